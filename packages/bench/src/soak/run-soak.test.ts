// A few seconds of soak on each listener: the load reaches the server through
// it and every message is accepted. The built files run (`npm test` builds
// first): the soak server is forked from dist. No figure is compared with a bound.
import { describe, expect, it } from "vitest";

interface BuiltSoak {
  runSoak: typeof import("./run-soak.js").runSoak;
  formatSoak: typeof import("./run-soak.js").formatSoak;
}
const built = (await import(
  new URL("../../dist/soak/run-soak.js", import.meta.url).href
)) as BuiltSoak;

describe.each(["grpc", "connect"] as const)("a short soak on the %s listener", (listener) => {
  it("sends whole sessions through it, all accepted, and samples the server", async () => {
    const result = await built.runSoak({
      listener,
      store: "memory",
      minutes: 0.15,
      warmupMinutes: 0.05,
      sampleSecs: 3,
      rate: 90,
    });
    expect(result.settings.listener).toBe(listener);
    expect(result.accepted).toBeGreaterThan(0);
    expect([...result.refused]).toEqual([]);
    expect(result.samples.length).toBeGreaterThanOrEqual(2);
    expect(built.formatSoak(result)[0]).toContain(`${listener} listener`);
  }, 60_000);
});
