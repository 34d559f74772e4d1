import { describe, expect, it } from "vitest";
import { RateLimiter } from "./rate-limiter.js";

/** A limiter on a clock the test sets. */
function limiterAt(limit: number): { limiter: RateLimiter; clock: { now: number } } {
  const clock = { now: 0 };
  return { limiter: new RateLimiter({ now: () => clock.now }, limit), clock };
}

/** `count` requests of `sender`, one every `stepMs` from 0; each must be admitted. */
function admitEvery(
  { limiter, clock }: ReturnType<typeof limiterAt>,
  sender: string,
  count: number,
  stepMs: number,
): void {
  for (let i = 0; i < count; i++) {
    clock.now = i * stepMs;
    expect(limiter.tryAcquire(sender)).toBe(true);
  }
}

describe("RateLimiter", () => {
  it("allows `limit` requests in any 60 s window per sender", () => {
    let now = 0;
    const limiter = new RateLimiter({ now: () => now }, 3);
    expect([1, 2, 3].map(() => limiter.tryAcquire("a"))).toEqual([true, true, true]);
    expect(limiter.tryAcquire("a")).toBe(false);
    expect(limiter.tryAcquire("b")).toBe(true);
    now = 59_999;
    expect(limiter.tryAcquire("a")).toBe(false);
    now = 60_000;
    expect(limiter.tryAcquire("a")).toBe(true);
    expect(limiter.tryAcquire("a")).toBe(true);
    expect(limiter.tryAcquire("a")).toBe(true);
    expect(limiter.tryAcquire("a")).toBe(false);
  });

  it("slides: a slot frees exactly 60 s after it was taken", () => {
    let now = 0;
    const limiter = new RateLimiter({ now: () => now }, 2);
    limiter.tryAcquire("a");
    now = 30_000;
    limiter.tryAcquire("a");
    now = 59_000;
    expect(limiter.tryAcquire("a")).toBe(false);
    now = 60_001;
    expect(limiter.tryAcquire("a")).toBe(true);
    expect(limiter.tryAcquire("a")).toBe(false);
    now = 90_001;
    expect(limiter.tryAcquire("a")).toBe(true);
  });

  it("forgets idle senders and is disabled by an infinite limit", () => {
    let now = 0;
    const limiter = new RateLimiter({ now: () => now }, 1);
    for (let i = 0; i < 2000; i++) limiter.tryAcquire(`s${i}`);
    now = 120_000;
    for (let i = 0; i < 2000; i++) expect(limiter.tryAcquire(`s${i}`)).toBe(true);
    const open = new RateLimiter({ now: () => 0 }, Number.POSITIVE_INFINITY);
    for (let i = 0; i < 10; i++) expect(open.tryAcquire("a")).toBe(true);
  });

  it("holds only the last minute's times of a sender that never pauses, however high the limit", () => {
    // Regression: a sender under a limit it never reached kept every time it
    // was ever admitted, for as long as it kept sending (8 bytes a message).
    const timed = limiterAt(1_000_000_000);
    // 100 requests a second for 30 minutes: 6,000 inside any 60 s window.
    admitEvery(timed, "chatty", 180_000, 10);
    expect(timed.limiter.heldTimes("chatty")).toBeLessThanOrEqual(2 * 6_000 + 1024);
  });

  it("still counts exactly at the boundary after cutting off old times", () => {
    const timed = limiterAt(3000);
    const { limiter, clock } = timed;
    // 50 per second: the window fills at 60 s (3,000 in it), then each new second frees 50.
    admitEvery(timed, "a", 3000, 20);
    clock.now = 59_999;
    expect(limiter.tryAcquire("a")).toBe(false);
    // The first time (0) leaves the window at 60 000; one slot frees.
    clock.now = 60_000;
    expect(limiter.tryAcquire("a")).toBe(true);
    expect(limiter.tryAcquire("a")).toBe(false);
    for (let second = 61; second < 400; second++) {
      clock.now = second * 1000;
      let admitted = 0;
      while (limiter.tryAcquire("a")) admitted++;
      // Each second, whatever left the window in that second comes back.
      expect(admitted).toBeGreaterThan(0);
    }
    // After many cut-offs the window still holds exactly the limit.
    clock.now += 1;
    expect(limiter.tryAcquire("a")).toBe(false);
    expect(limiter.heldTimes("a")).toBeLessThanOrEqual(2 * 3000 + 1024);
  });
});
