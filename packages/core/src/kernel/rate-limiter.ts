import type { Clock } from "../runtime-options.js";

const WINDOW_MS = 60_000;
const SWEEP_EVERY = 128;

/**
 * Per-sender sliding 60-second windows (core.md RL-1). A slot is consumed when
 * the check passes, whatever then happens to the envelope.
 */
export class RateLimiter {
  private readonly windows = new Map<string, number[]>();
  private checks = 0;

  constructor(
    private readonly clock: Clock,
    private readonly limitPerMinute: number,
  ) {}

  /** Takes a slot for `sender`; false when the sender has used its budget. */
  tryAcquire(sender: string): boolean {
    const now = this.clock.now();
    if (++this.checks % SWEEP_EVERY === 0) this.sweep(now);
    let window = this.windows.get(sender);
    if (window === undefined) {
      window = [];
      this.windows.set(sender, window);
    }
    let expired = 0;
    while (expired < window.length && (window[expired] as number) <= now - WINDOW_MS) expired++;
    if (expired > 0) window.splice(0, expired);
    if (window.length >= this.limitPerMinute) return false;
    window.push(now);
    return true;
  }

  private sweep(now: number): void {
    for (const [sender, window] of this.windows) {
      const last = window[window.length - 1];
      if (last === undefined || last <= now - WINDOW_MS) this.windows.delete(sender);
    }
  }
}
