import { describe, expect, it } from "vitest";
import { DEFAULT_EPOCH_MS, SimulatedClock } from "./simulated-clock.js";

describe("SimulatedClock", () => {
  it("starts at 2026-01-01T00:00:00Z unless told otherwise", () => {
    expect(new Date(new SimulatedClock().now()).toISOString()).toBe("2026-01-01T00:00:00.000Z");
    expect(new SimulatedClock(42).now()).toBe(42);
    expect(DEFAULT_EPOCH_MS).toBe(1_767_225_600_000);
  });

  it("moves only when told to", () => {
    const clock = new SimulatedClock(1_000);
    expect(clock.advance(500)).toBe(1_500);
    clock.set(2_000);
    clock.set(2_000);
    expect(clock.now()).toBe(2_000);
  });

  it("refuses to go backwards or to a fraction of a millisecond", () => {
    const clock = new SimulatedClock(1_000);
    expect(() => clock.set(999)).toThrow(RangeError);
    expect(() => clock.advance(-1)).toThrow(RangeError);
    expect(() => clock.advance(0.5)).toThrow(RangeError);
    expect(() => clock.set(Number.NaN)).toThrow(RangeError);
    expect(() => new SimulatedClock(-1)).toThrow(RangeError);
    expect(clock.now()).toBe(1_000);
  });
});
