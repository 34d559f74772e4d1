// P2's turn-taking, on real child processes: the load generator sends
// nothing while paused, answers "paused" only once its calls are back, and
// counts only what it sent inside the window; the servers of a round all get
// measured. The built files run (`npm test` builds first): the generator and
// the echo servers are forked from dist. No figure is compared with a bound.

import { type ChildProcess, fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import type { FromLoadGenerator, LoadResult, ToLoadGenerator } from "./wire.js";

interface BuiltP2 {
  startEchoServer: typeof import("./run-p2.js").startEchoServer;
  measureInterleaved: typeof import("./run-p2.js").measureInterleaved;
}
const built = (await import(new URL("../../dist/p2/run-p2.js", import.meta.url).href)) as BuiltP2;
const LOAD_GENERATOR = fileURLToPath(new URL("../../dist/p2/load-generator.js", import.meta.url));

const small = (address: string) => ({ address, callers: 4, connections: 1, sessions: 2 });
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function echoServer() {
  const server = await built.startEchoServer("grpc-js", []);
  cleanups.push(() => server.stop());
  return server;
}

/** The next message from the generator that `pick` accepts. */
function next<T>(child: ChildProcess, pick: (message: FromLoadGenerator) => T | undefined) {
  return new Promise<T>((resolve, reject) => {
    const onMessage = (message: FromLoadGenerator) => {
      const value = pick(message);
      if (value === undefined) return;
      child.off("message", onMessage);
      resolve(value);
    };
    child.on("message", onMessage);
    child.once("exit", (code) => reject(new Error(`the generator exited (${code})`)));
  });
}

async function pausedGenerator(address: string): Promise<ChildProcess> {
  const generator = fork(LOAD_GENERATOR, [], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  cleanups.push(async () => {
    if (generator.exitCode !== null) return;
    const exited = new Promise((resolve) => generator.once("exit", resolve));
    generator.send({ type: "stop" } satisfies ToLoadGenerator);
    await exited;
  });
  const ready = next(generator, (m) => (m.type === "ready" || m.type === "error" ? m : undefined));
  generator.send({
    type: "config",
    config: { ...small(address), startPaused: true },
  } satisfies ToLoadGenerator);
  expect(await ready).toEqual({ type: "ready" });
  return generator;
}

function result(generator: ChildProcess): Promise<LoadResult> {
  const answer = next(generator, (m) => (m.type === "result" ? m.result : undefined));
  generator.send({ type: "end" } satisfies ToLoadGenerator);
  return answer;
}

/** Sends `pause` and resolves once the generator answers "paused". */
function pause(generator: ChildProcess): Promise<true> {
  const paused = next(generator, (m) => (m.type === "paused" ? true : undefined));
  generator.send({ type: "pause" } satisfies ToLoadGenerator);
  return paused;
}

/**
 * One measured window: `begin`, then `resume` sent `resumes` times, load for
 * `ms`, pause, and the window's result.
 */
async function loadedWindow(generator: ChildProcess, ms: number, resumes = 1) {
  generator.send({ type: "begin" } satisfies ToLoadGenerator);
  for (let i = 0; i < resumes; i++) generator.send({ type: "resume" } satisfies ToLoadGenerator);
  await sleep(ms);
  await pause(generator);
  return result(generator);
}

describe("P2's load generator, paused and resumed", () => {
  it("sends nothing until resumed, and counts only what it sent inside the window", async () => {
    const server = await echoServer();
    const generator = await pausedGenerator(server.address);
    generator.send({ type: "begin" } satisfies ToLoadGenerator);
    await sleep(300);
    const idle = await result(generator);
    expect(idle.calls).toBe(0);
    expect(idle.elapsedMs).toBe(0);

    const busy = await loadedWindow(generator, 300);
    expect(busy.calls).toBeGreaterThan(0);
    expect(busy.accepted).toBe(busy.calls);
    expect(busy.failed).toBe(0);
    expect(busy.elapsedMs).toBeGreaterThan(0);

    // Paused again: a new window counts nothing.
    generator.send({ type: "begin" } satisfies ToLoadGenerator);
    await sleep(300);
    expect((await result(generator)).calls).toBe(0);
  });

  it("answers a second pause at once, and a resume without a pause changes nothing", async () => {
    const server = await echoServer();
    const generator = await pausedGenerator(server.address);
    expect(await pause(generator)).toBe(true);
    const measured = await loadedWindow(generator, 200, 2);
    expect(measured.calls).toBeGreaterThan(0);
    expect(measured.accepted).toBe(measured.calls);
  });
});

describe("P2's interleaved measurement", () => {
  it("measures every server of a round in its own turns", async () => {
    const servers = [await echoServer(), await echoServer()];
    const measurements = await built.measureInterleaved(
      servers,
      (server) => small(server.address),
      200,
      600,
      3,
    );
    expect(measurements).toHaveLength(2);
    for (const { load, serverCpuMicros, serverThreadCpu } of measurements) {
      expect(load.calls).toBeGreaterThan(0);
      expect(load.accepted).toBe(load.calls);
      expect(load.failed).toBe(0);
      expect(serverCpuMicros).toBeGreaterThan(0);
      // Linux: the server's threads are read too, and its main thread did the calls.
      if (process.platform === "linux") expect(serverThreadCpu?.mainMicros).toBeGreaterThan(0);
      else expect(serverThreadCpu).toBeUndefined();
    }
  });

  it("refuses a number of turns that is not a positive integer", async () => {
    const server = await echoServer();
    for (const slices of [0, 1.5, Number.NaN]) {
      await expect(
        built.measureInterleaved([server], (s) => small(s.address), 0, 100, slices),
      ).rejects.toThrow(/slices must be a positive integer/);
    }
  });
});
