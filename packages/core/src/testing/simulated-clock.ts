import type { Clock } from "../runtime-options.js";

/** 2026-01-01T00:00:00Z: the default start of simulated time, so transcripts do not depend on the day a test runs. */
export const DEFAULT_EPOCH_MS = Date.UTC(2026, 0, 1);

/**
 * A {@link Clock} that only moves when told to. Time is a whole number of
 * milliseconds and never goes backwards: the runtime writes it into int64
 * fields (a fraction would not convert) and its TTL, suspension and
 * rate-limit arithmetic assumes a monotonic clock.
 *
 * Moving this clock does not run the runtime's time-based work; use the
 * harness's `advance(ms)` for that.
 */
export class SimulatedClock implements Clock {
  private current: number;

  /** @param startMs where time starts, in ms since the Unix epoch. Default {@link DEFAULT_EPOCH_MS}. */
  constructor(startMs: number = DEFAULT_EPOCH_MS) {
    checkTime(startMs, "startMs");
    this.current = startMs;
  }

  now(): number {
    return this.current;
  }

  /** Moves to `ms`. Throws a RangeError for a time in the past or a non-integer. */
  set(ms: number): void {
    checkTime(ms, "ms");
    if (ms < this.current) {
      throw new RangeError(
        `a simulated clock does not go backwards (now ${this.current}, asked for ${ms})`,
      );
    }
    this.current = ms;
  }

  /** Moves forward by `ms` (≥ 0) and returns the new time. */
  advance(ms: number): number {
    checkTime(ms, "ms");
    this.set(this.current + ms);
    return this.current;
  }
}

function checkTime(value: number, name: string): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(
      `${name} must be a non-negative whole number of milliseconds, got ${value}`,
    );
  }
}
