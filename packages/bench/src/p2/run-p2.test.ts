import { describe, expect, it } from "vitest";
import {
  formatP2Summary,
  type P2Result,
  type P2Target,
  type P2TargetResult,
  ratioOverRounds,
  roundOrder,
  summariseTarget,
} from "./run-p2.js";

function measured(
  target: P2Target,
  requestsPerSecond: number,
  cpu: number,
  mainThreadCpu?: number,
): P2TargetResult {
  return {
    target,
    requestsPerSecond,
    cpuMicrosPerCall: cpu,
    mainThreadCpuMicrosPerCall: mainThreadCpu,
    serverCpuMs: (cpu * requestsPerSecond) / 1000,
    serverBusy: (cpu * requestsPerSecond) / 1e6,
    calls: requestsPerSecond,
    accepted: requestsPerSecond,
    refused: 0,
    failed: 0,
    elapsedMs: 1000,
    p50Ms: 10,
    p99Ms: 50,
    firstProblem: undefined,
  };
}

/** A P2 result of two rounds of the runtime on grpc-js and its echo. */
function twoRoundResult(rounds: P2TargetResult[][]): P2Result {
  const targets: P2Target[] = ["runtime-grpc-js", "grpc-js-echo"];
  return {
    settings: {
      callers: 64,
      connections: 8,
      sessions: 64,
      warmupMs: 1500,
      durationMs: 6000,
      rounds: 2,
      slices: 6,
      targets,
      profile: false,
      profileTargets: [],
      profileDurationMs: 4000,
      profileTop: 15,
    },
    results: targets.map((target) =>
      summariseTarget(rounds.flat().filter((r) => r.target === target)),
    ),
    roundResults: rounds,
    runtimeVsConnectEcho: undefined,
    runtimeVsGrpcJsEcho: ratioOverRounds(rounds, "runtime-grpc-js", "grpc-js-echo"),
    profiles: [],
    totalMs: 30_000,
  };
}

describe("P2 rounds", () => {
  it("rotates the order of the targets from round to round", () => {
    const targets = ["a", "b", "c"];
    expect(roundOrder(targets, 0)).toEqual(["a", "b", "c"]);
    expect(roundOrder(targets, 1)).toEqual(["b", "c", "a"]);
    expect(roundOrder(targets, 4)).toEqual(["b", "c", "a"]);
    expect(roundOrder([], 2)).toEqual([]);
  });

  it("summarises a target by the median of its rounds and the sum of its counts", () => {
    const summary = summariseTarget([
      measured("grpc-js-echo", 5000, 90),
      measured("grpc-js-echo", 3000, 150),
      measured("grpc-js-echo", 4000, 100),
    ]);
    expect(summary.requestsPerSecond).toBe(4000);
    expect(summary.cpuMicrosPerCall).toBe(100);
    expect(summary.cpuMicrosPerCallRange).toEqual([90, 150]);
    expect(summary.calls).toBe(12000);
    expect(summary.elapsedMs).toBe(3000);
  });

  it("takes the median of an even number of rounds as the mean of the middle two", () => {
    const summary = summariseTarget([
      measured("grpc-js-echo", 1000, 100),
      measured("grpc-js-echo", 3000, 120),
    ]);
    expect(summary.requestsPerSecond).toBe(2000);
    expect(summary.cpuMicrosPerCall).toBe(110);
  });

  it("gives the main thread's median only when every round could read it", () => {
    expect(
      summariseTarget([
        measured("grpc-js-echo", 5000, 90, 70),
        measured("grpc-js-echo", 3000, 150, 110),
        measured("grpc-js-echo", 4000, 100, 80),
      ]).mainThreadCpuMicrosPerCall,
    ).toBe(80);
    expect(
      summariseTarget([measured("grpc-js-echo", 5000, 90, 70), measured("grpc-js-echo", 4000, 100)])
        .mainThreadCpuMicrosPerCall,
    ).toBeUndefined();
  });

  it("refuses to summarise no measurement", () => {
    expect(() => summariseTarget([])).toThrow(/no measurement/);
  });

  it("takes each round's ratio before the median, so a slow round does not skew it", () => {
    // Round 2 ran on a slow machine: both servers cost twice as much.
    const rounds = [
      [measured("runtime-grpc-js", 4000, 140), measured("grpc-js-echo", 5000, 100)],
      [measured("grpc-js-echo", 2500, 200), measured("runtime-grpc-js", 2000, 280)],
      [measured("runtime-grpc-js", 4400, 130), measured("grpc-js-echo", 5000, 100)],
    ];
    const ratio = ratioOverRounds(rounds, "runtime-grpc-js", "grpc-js-echo");
    expect(ratio?.rounds.map((round) => round.cpuPerCall)).toEqual([1.4, 1.4, 1.3]);
    expect(ratio?.cpuPerCall).toBe(1.4);
    expect(ratio?.throughput).toBeCloseTo(0.8, 10);
  });

  it("takes the main threads' ratio round by round too, when every round has it", () => {
    const rounds = [
      [measured("runtime-grpc-js", 4000, 140, 105), measured("grpc-js-echo", 5000, 100, 75)],
      [measured("grpc-js-echo", 5000, 100, 80), measured("runtime-grpc-js", 4400, 130, 100)],
      [measured("runtime-grpc-js", 4400, 130, 120), measured("grpc-js-echo", 5000, 100, 80)],
    ];
    const ratio = ratioOverRounds(rounds, "runtime-grpc-js", "grpc-js-echo");
    expect(ratio?.rounds.map((round) => round.mainThreadCpuPerCall)).toEqual([1.4, 1.25, 1.5]);
    expect(ratio?.mainThreadCpuPerCall).toBe(1.4);
    const partly = [
      rounds[0] ?? [],
      [measured("runtime-grpc-js", 1, 1), measured("grpc-js-echo", 1, 1)],
    ];
    const noMain = ratioOverRounds(partly, "runtime-grpc-js", "grpc-js-echo");
    expect(noMain?.cpuPerCall).toBe(1.2);
    expect(noMain?.mainThreadCpuPerCall).toBeUndefined();
  });

  it("gives no ratio when a round lacks one of the two servers", () => {
    const rounds = [[measured("runtime-grpc-js", 4000, 140)]];
    expect(ratioOverRounds(rounds, "runtime-grpc-js", "grpc-js-echo")).toBeUndefined();
    expect(ratioOverRounds([], "runtime-grpc-js", "grpc-js-echo")).toBeUndefined();
  });

  it("prints the medians, the range of each server and each round's ratio", () => {
    const text = formatP2Summary(
      twoRoundResult([
        [measured("runtime-grpc-js", 4000, 140), measured("grpc-js-echo", 5000, 100)],
        [measured("grpc-js-echo", 5000, 100), measured("runtime-grpc-js", 4400, 130)],
      ]),
    );
    expect(text).toContain("median of 2 rounds");
    expect(text).toMatch(/runtime-grpc-js\s+4200\s+135\.0 µs\s+130–140 µs/);
    expect(text).toContain(
      "runtime-grpc-js / grpc-js-echo: throughput 0.84× (rounds: 0.80, 0.88), CPU per call 1.35× (rounds: 1.40, 1.30)",
    );
    // Without the threads' CPU (not Linux), no main-thread figure is made up.
    expect(text).toMatch(/runtime-grpc-js\s+4200\s+135\.0 µs\s+130–140 µs\s+–\s/);
    expect(text).not.toContain("main thread 1");
    expect(text).not.toContain("(main thread:");
  });

  it("prints the main thread's CPU per call and ratio when the threads could be read", () => {
    const text = formatP2Summary(
      twoRoundResult([
        [measured("runtime-grpc-js", 4000, 140, 105), measured("grpc-js-echo", 5000, 100, 75)],
        [measured("grpc-js-echo", 5000, 100, 80), measured("runtime-grpc-js", 4400, 130, 104)],
      ]),
    );
    expect(text).toMatch(/runtime-grpc-js\s+4200\s+135\.0 µs\s+130–140 µs\s+104\.5 µs/);
    expect(text).toMatch(/grpc-js-echo\s+5000\s+100\.0 µs\s+100–100 µs\s+77\.5 µs/);
    expect(text).toContain("(main thread: ");
    expect(text).toContain(
      "CPU per call 1.35× (rounds: 1.40, 1.30), on the main thread 1.35× (rounds: 1.40, 1.30)",
    );
  });
});
