import type { Clock } from "../runtime-options.js";

const WINDOW_MS = 60_000;
const SWEEP_EVERY = 1024;

/** The last `limit` acceptance times of one sender, as a ring. */
interface Window {
  times: number[];
  /** Index of the oldest time once the ring is full. */
  head: number;
}

/**
 * Per-sender sliding 60-second windows (core.md RL-1): a request is refused
 * when the sender already has `limit` requests in the last 60 s. Each sender
 * keeps a ring of its last `limit` times, so a check is O(1). A slot is
 * consumed when the check passes, whatever then happens to the envelope.
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
      window = { times: [], head: 0 };
      this.windows.set(sender, window);
    }
    if (window.times.length < this.limitPerMinute) {
      window.times.push(now);
      return true;
    }
    // Full ring: the oldest of the last `limit` requests must have left the window.
    if ((window.times[window.head] as number) > now - WINDOW_MS) return false;
    window.times[window.head] = now;
    window.head = (window.head + 1) % window.times.length;
    return true;
  }

  /** Forgets senders idle for a whole window (memory bound, RL-5). */
  private sweep(now: number): void {
    for (const [sender, window] of this.windows) {
      const newest =
        window.times.length < this.limitPerMinute
          ? window.times[window.times.length - 1]
          : window.times[(window.head + window.times.length - 1) % window.times.length];
      if (newest === undefined || newest <= now - WINDOW_MS) this.windows.delete(sender);
    }
  }
}
