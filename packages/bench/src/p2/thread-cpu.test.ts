import { Worker } from "node:worker_threads";
import { describe, expect, it } from "vitest";
import { readThreadCpu, type ThreadCpuSnapshot, threadCpuBetween } from "./thread-cpu.js";

const onLinux = process.platform === "linux";

/** Keeps the calling thread on the CPU for `ms` of wall time. */
function spin(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // busy
  }
}

function snapshot(pid: number, threads: [number, number][]): ThreadCpuSnapshot {
  return { pid, threads: new Map(threads) };
}

describe.runIf(onLinux)("reading a process's CPU by thread", () => {
  it("counts work on the main thread as the main thread's", async () => {
    const before = await readThreadCpu(process.pid);
    spin(50);
    const after = await readThreadCpu(process.pid);
    expect(before?.threads.has(process.pid)).toBe(true);
    const used = threadCpuBetween(before, after);
    expect(used?.mainMicros).toBeGreaterThan(0);
  });

  it("counts work on another thread as the other threads'", async () => {
    const worker = new Worker(
      "const until = Date.now() + 150; while (Date.now() < until) {} require('node:worker_threads').parentPort.postMessage('done');",
      { eval: true },
    );
    const online = new Promise((resolve) => worker.once("online", resolve));
    const done = new Promise((resolve) => worker.once("message", resolve));
    await online;
    const before = await readThreadCpu(process.pid);
    await done;
    const after = await readThreadCpu(process.pid);
    await worker.terminate();
    expect(threadCpuBetween(before, after)?.otherMicros).toBeGreaterThan(0);
  });

  it("gives nothing for a process that does not exist", async () => {
    // Above the kernel's largest possible pid (2^22).
    expect(await readThreadCpu(5_000_000)).toBeUndefined();
  });
});

describe("the CPU used between two snapshots", () => {
  it("splits the main thread from the others", () => {
    const before = snapshot(10, [
      [10, 1_000],
      [11, 200],
      [12, 300],
    ]);
    const after = snapshot(10, [
      [10, 1_500],
      [11, 260],
      [12, 340],
    ]);
    expect(threadCpuBetween(before, after)).toEqual({ mainMicros: 500, otherMicros: 100 });
  });

  it("counts a thread that started in between in full, and drops one that ended", () => {
    const before = snapshot(10, [
      [10, 1_000],
      [11, 200],
    ]);
    const after = snapshot(10, [
      [10, 1_100],
      [13, 70],
    ]);
    expect(threadCpuBetween(before, after)).toEqual({ mainMicros: 100, otherMicros: 70 });
  });

  it("gives nothing when a snapshot is missing or of another process", () => {
    const one = snapshot(10, [[10, 1_000]]);
    expect(threadCpuBetween(undefined, one)).toBeUndefined();
    expect(threadCpuBetween(one, undefined)).toBeUndefined();
    expect(threadCpuBetween(one, snapshot(20, [[20, 2_000]]))).toBeUndefined();
  });
});
