import { describe, expect, it } from "vitest";
import { RateLimiter } from "./rate-limiter.js";

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
});
