import type { Clock } from "../runtime-options.js";

const WINDOW_MS = 60_000;
const SWEEP_EVERY = 1024;

/**
 * The acceptance times of one sender inside the window, oldest first:
 * `times[start..]`. The times before `start` have left the window; they are
 * cut off in batches, so an acquisition costs O(1) amortised.
 */
interface Window {
  times: number[];
  start: number;
}

/** Left-window times kept before the array is compacted (when they are also half of it). */
const COMPACT_AFTER = 1024;

/**
 * Per-sender sliding 60-second windows (core.md RL-1): a request is refused
 * when the sender already has `limit` requests in the last 60 s. A sender
 * keeps the times of its requests still inside the window, so its memory is
 * bounded by what it sent in the last minute as well as by the limit: with a
 * limit set very high, a sender that never pauses must not grow its window
 * forever. A slot is consumed when the check passes, whatever then happens
 * to the envelope.
 */
export class RateLimiter {
  private readonly windows = new Map<string, Window>();
  private checks = 0;

  constructor(
    private readonly clock: Clock,
    private readonly limitPerMinute: number,
  ) {}

  /** Takes a slot for `sender`; false when the sender has used its budget. */
  tryAcquire(sender: string): boolean {
    if (this.limitPerMinute === Number.POSITIVE_INFINITY) return true;
    const now = this.clock.now();
    if (++this.checks % SWEEP_EVERY === 0) this.sweep(now);
    let window = this.windows.get(sender);
    if (window === undefined) {
      window = { times: [], start: 0 };
      this.windows.set(sender, window);
    }
    const { times } = window;
    const leftAt = now - WINDOW_MS;
    while (window.start < times.length && (times[window.start] as number) <= leftAt) {
      window.start++;
    }
    if (times.length - window.start >= this.limitPerMinute) return false;
    times.push(now);
    if (window.start >= COMPACT_AFTER && window.start * 2 >= times.length) {
      window.times = times.slice(window.start);
      window.start = 0;
    }
    return true;
  }

  /** Times held for `sender` (those inside the window and any not yet cut off). */
  heldTimes(sender: string): number {
    return this.windows.get(sender)?.times.length ?? 0;
  }

  /** Forgets senders idle for a whole window (memory bound, RL-5). */
  private sweep(now: number): void {
    for (const [sender, window] of this.windows) {
      const newest = window.times[window.times.length - 1];
      if (newest === undefined || newest <= now - WINDOW_MS) this.windows.delete(sender);
    }
  }
}
