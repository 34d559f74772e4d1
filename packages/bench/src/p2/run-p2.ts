// Benchmark P2: Send throughput over gRPC with 64 concurrent callers, the
// load generator in its own process, against four servers in one run:
//   runtime-grpc-js  the real macp-runtime executable (memory store, dev
//                    auth) on its gRPC listener (@grpc/grpc-js, MACP_BIND_ADDR),
//                    fed valid decision-mode traffic;
//   runtime-connect  the same on its Connect listener (node:http2,
//                    MACP_HTTP_BIND_ADDR), which also serves gRPC;
//   connect-echo     Connect on Node's HTTP/2 answering Send with a fixed Ack;
//   grpc-js-echo     @grpc/grpc-js answering Send with a fixed Ack;
//   macp-grpc-stub   (on request) @macp/grpc's Send path over a runtime that
//                    accepts at once: the grpc-js transport's own cost.
// Each server runs in its own process, so its CPU time (process.cpuUsage,
// read inside the server) divided by the calls it answered is its cost per
// call. A round starts every server afresh and loads them in turns, one at a
// time, so the machine's drift in speed (which can reach ±30% within minutes
// on a shared host) falls on all of them alike. The echo servers bound what the transport alone costs; the ratios say
// how much the runtime adds on top.

import { type ChildProcess, fork, spawn } from "node:child_process";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type ProfileSummary, summariseCpuProfile } from "./profile.js";
import {
  readThreadCpu,
  type ThreadCpu,
  type ThreadCpuSnapshot,
  threadCpuBetween,
} from "./thread-cpu.js";
import type {
  FromEchoServer,
  FromLoadGenerator,
  LoadConfig,
  LoadResult,
  ToEchoServer,
  ToLoadGenerator,
} from "./wire.js";

export type P2Target =
  | "runtime-grpc-js"
  | "runtime-connect"
  | "connect-echo"
  | "grpc-js-echo"
  | "macp-grpc-stub";

/** The servers P2 measures by default. */
export const P2_TARGETS: readonly P2Target[] = [
  "runtime-grpc-js",
  "grpc-js-echo",
  "runtime-connect",
  "connect-echo",
];

/** Every server P2 can measure (`targets`). */
export const P2_ALL_TARGETS: readonly P2Target[] = [...P2_TARGETS, "macp-grpc-stub"];

export interface P2Options {
  /** Concurrent callers, each with its own sender. Default 64. */
  readonly callers?: number;
  /** HTTP/2 connections the callers share. Default 8. */
  readonly connections?: number;
  /** Decision sessions the traffic is spread over. Default 64. */
  readonly sessions?: number;
  /** Load before the measured window (JIT warm-up). Default 1500 ms. */
  readonly warmupMs?: number;
  /** The measured window per server. Default 6000 ms. */
  readonly durationMs?: number;
  /**
   * Rounds: each measures every target once, each round starting one target
   * later, so drift in the machine's speed falls on all targets alike. The
   * figures are medians over rounds, the ratios medians of each round's own
   * ratio (its runtime against its echo, measured minutes apart at most).
   * Default 3.
   */
  readonly rounds?: number;
  /**
   * Turns per server within a round's window: the servers of a round run side
   * by side (each with its own load generator) and take `slices` turns each,
   * one server loaded at a time, so that the machine's drift within the round
   * falls on all of them alike. 1 measures each server in one stretch. Default 6.
   */
  readonly slices?: number;
  /** Servers to measure, in order. Default {@link P2_TARGETS}. */
  readonly targets?: readonly P2Target[];
  /**
   * After measuring, run the `profileTargets` again under `node --cpu-prof`
   * and summarise where their CPU goes. Default false.
   */
  readonly profile?: boolean;
  /** Servers to profile when `profile` is on. Default runtime-grpc-js and grpc-js-echo. */
  readonly profileTargets?: readonly P2Target[];
  /** Measured window of each profiling run. Default 4000 ms. */
  readonly profileDurationMs?: number;
  /** Frames listed per profile. Default 15. */
  readonly profileTop?: number;
  /** Progress lines. Default: none. */
  readonly log?: (line: string) => void;
}

export interface P2TargetResult extends LoadResult {
  readonly target: P2Target;
  readonly requestsPerSecond: number;
  /** Server CPU (user + system) during the measured window, ms. */
  readonly serverCpuMs: number;
  /** Server CPU per answered call, µs. */
  readonly cpuMicrosPerCall: number;
  /**
   * The part of it on the server's main thread, where the request path runs;
   * the rest is V8's helper threads (garbage collection, compilation).
   * Undefined where threads cannot be read (Linux only).
   */
  readonly mainThreadCpuMicrosPerCall: number | undefined;
  /**
   * Server CPU time ÷ wall time of the window. Well below 1, the server was
   * waiting for the load generator, so requests/s measures the client.
   */
  readonly serverBusy: number;
}

export interface P2RoundRatio {
  /** runtime requests/s ÷ echo requests/s (same transport). */
  readonly throughput: number;
  /** runtime CPU per call ÷ echo CPU per call. */
  readonly cpuPerCall: number;
  /** The same on the main threads only; undefined where threads cannot be read. */
  readonly mainThreadCpuPerCall: number | undefined;
}

/** The median of the rounds' ratios, and each round's. */
export interface P2Ratio extends P2RoundRatio {
  readonly rounds: readonly P2RoundRatio[];
}

export interface P2Profile {
  readonly target: P2Target;
  /** Server CPU per call in the profiling run (profiling adds overhead), µs. */
  readonly cpuMicrosPerCall: number;
  readonly summary: ProfileSummary;
}

/** A target over all rounds: medians of the rates, sums of the counts. */
export interface P2TargetSummary extends P2TargetResult {
  /** Lowest and highest CPU per call of the rounds, µs. */
  readonly cpuMicrosPerCallRange: readonly [number, number];
}

export interface P2Result {
  readonly settings: Required<Omit<P2Options, "log" | "targets">> & {
    readonly targets: readonly P2Target[];
  };
  readonly results: readonly P2TargetSummary[];
  /** Every measurement, round by round. */
  readonly roundResults: readonly (readonly P2TargetResult[])[];
  /** runtime-connect against connect-echo. */
  readonly runtimeVsConnectEcho: P2Ratio | undefined;
  /** runtime-grpc-js against grpc-js-echo. */
  readonly runtimeVsGrpcJsEcho: P2Ratio | undefined;
  readonly profiles: readonly P2Profile[];
  readonly totalMs: number;
}

const HERE = fileURLToPath(new URL(".", import.meta.url));
const LOAD_GENERATOR = join(HERE, "load-generator.js");
const ECHO_SERVER = join(HERE, "echo-server.js");
// The runtime executable of this monorepo, built by `npm run build`.
const RUNTIME_MAIN = fileURLToPath(new URL("../../../runtime/dist/main.js", import.meta.url));

export interface ServerHandle {
  readonly address: string;
  /** The server's process id, for reading its threads' CPU. */
  readonly pid: number | undefined;
  /** User + system CPU of the server process so far, µs. */
  cpuMicros(): Promise<number>;
  /** Stops the server and resolves when its process has exited. */
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function exitOf(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

/** Resolves with the first IPC message `accept` returns a value for. */
function nextMessage<M, T>(child: ChildProcess, accept: (message: M) => T | undefined): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: M) => {
      const value = accept(message);
      if (value === undefined) return;
      cleanup();
      resolve(value);
    };
    const onExit = (code: number | null) => {
      cleanup();
      reject(new Error(`child exited (${code}) before answering`));
    };
    const cleanup = () => {
      child.off("message", onMessage);
      child.off("exit", onExit);
    };
    child.on("message", onMessage);
    child.once("exit", onExit);
  });
}

/** Starts one of the bare echo servers (or the @macp/grpc stub) in a child process. */
export async function startEchoServer(
  kind: "connect" | "grpc-js" | "macp-grpc",
  execArgv: string[],
): Promise<ServerHandle> {
  const child = fork(ECHO_SERVER, [kind], {
    execArgv,
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const port = await nextMessage<FromEchoServer, number>(child, (m) =>
    m.type === "listening" ? m.port : undefined,
  );
  return {
    address: `127.0.0.1:${port}`,
    pid: child.pid,
    async cpuMicros() {
      const reply = nextMessage<FromEchoServer, number>(child, (m) =>
        m.type === "cpu" ? m.userMicros + m.systemMicros : undefined,
      );
      child.send({ type: "cpu" } satisfies ToEchoServer);
      return reply;
    },
    async stop() {
      child.send({ type: "stop" } satisfies ToEchoServer);
      await exitOf(child);
    },
  };
}

/** Starts `macp-runtime`; `storage` holds its storage variables (default: memory only). */
export async function startRuntimeServer(
  execArgv: string[],
  listener: "grpc-js" | "connect",
  storage: Readonly<Record<string, string>> = { MACP_MEMORY_ONLY: "1" },
): Promise<ServerHandle> {
  const child = spawn(process.execPath, [...execArgv, RUNTIME_MAIN], {
    env: {
      PATH: process.env.PATH,
      MACP_ALLOW_INSECURE: "1",
      ...storage,
      MACP_BIND_ADDR: "127.0.0.1:0",
      MACP_HTTP_BIND_ADDR: "127.0.0.1:0",
      MACP_METRICS_ADDR: "127.0.0.1:0",
      // The defaults (60 starts, 600 messages per sender per minute) would
      // refuse almost all of the load; the bench measures the accept path.
      MACP_SESSION_START_LIMIT_PER_MINUTE: "1000000000",
      MACP_MESSAGE_LIMIT_PER_MINUTE: "1000000000",
      MACP_SHUTDOWN_DRAIN_SECS: "1",
      MACP_LOG_LEVEL: "info",
    },
    stdio: ["ignore", "pipe", "inherit"],
  });
  let output = "";
  const listening = await new Promise<{ url: string; metrics: string }>((resolve, reject) => {
    child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
      output += chunk;
      for (const line of output.split("\n")) {
        if (!line.includes("listening")) continue;
        const parsed = JSON.parse(line) as { url?: string; httpUrl?: string; metrics?: string };
        const url = listener === "grpc-js" ? parsed.url : parsed.httpUrl;
        if (url !== undefined && parsed.metrics !== undefined) {
          resolve({ url, metrics: parsed.metrics });
        }
      }
    });
    child.once("exit", (code) =>
      reject(new Error(`${RUNTIME_MAIN} exited (${code}) before listening: ${output}`)),
    );
  });
  child.stdout?.resume();
  const address = listening.url.replace(/^https?:\/\//, "");
  return {
    address,
    pid: child.pid,
    // The runtime's Prometheus endpoint reports prom-client's process_cpu_*
    // counters, which read process.cpuUsage() inside the server.
    async cpuMicros() {
      const text = await (await fetch(`http://${listening.metrics}/metrics`)).text();
      const read = (name: string) => {
        const match = new RegExp(`^${name} ([0-9.e+-]+)$`, "m").exec(text);
        if (match === null) throw new Error(`${name} missing from the runtime's metrics`);
        return Number(match[1]) * 1e6;
      };
      return read("process_cpu_user_seconds_total") + read("process_cpu_system_seconds_total");
    },
    async stop() {
      child.kill("SIGTERM");
      await exitOf(child);
    },
  };
}

function startServer(target: P2Target, execArgv: string[]): Promise<ServerHandle> {
  switch (target) {
    case "runtime-grpc-js":
      return startRuntimeServer(execArgv, "grpc-js");
    case "runtime-connect":
      return startRuntimeServer(execArgv, "connect");
    case "connect-echo":
      return startEchoServer("connect", execArgv);
    case "grpc-js-echo":
      return startEchoServer("grpc-js", execArgv);
    case "macp-grpc-stub":
      return startEchoServer("macp-grpc", execArgv);
  }
}

export interface Measurement {
  readonly load: LoadResult;
  readonly serverCpuMicros: number;
  /** The same split by thread; undefined where threads cannot be read. */
  readonly serverThreadCpu: ThreadCpu | undefined;
  /** When the measured window closed, for lining a profile up with it. */
  readonly endedAt: number;
}

/** The server's CPU so far, whole and by thread, read at one moment. */
async function usage(
  server: ServerHandle,
): Promise<{ readonly cpuMicros: number; readonly threads: ThreadCpuSnapshot | undefined }> {
  const [cpuMicros, threads] = await Promise.all([
    server.cpuMicros(),
    server.pid === undefined ? undefined : readThreadCpu(server.pid),
  ]);
  return { cpuMicros, threads };
}

/** Adds `part` to `total`; undefined as soon as either is. */
function addThreadCpu(total: ThreadCpu | undefined, part: ThreadCpu | undefined) {
  if (total === undefined || part === undefined) return undefined;
  return {
    mainMicros: total.mainMicros + part.mainMicros,
    otherMicros: total.otherMicros + part.otherMicros,
  };
}

export async function measure(
  server: ServerHandle,
  config: LoadConfig,
  warmupMs: number,
  durationMs: number,
): Promise<Measurement> {
  const generator = fork(LOAD_GENERATOR, [], {
    execArgv: [],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const send = (message: ToLoadGenerator) => generator.send(message);
  try {
    const ready = nextMessage<FromLoadGenerator, FromLoadGenerator>(generator, (m) =>
      m.type === "ready" || m.type === "error" ? m : undefined,
    );
    send({ type: "config", config });
    const setup = await ready;
    if (setup.type === "error") throw new Error(`load generator: ${setup.message}`);

    await sleep(warmupMs);
    const before = await usage(server);
    send({ type: "begin" });
    await sleep(durationMs);
    const result = nextMessage<FromLoadGenerator, LoadResult>(generator, (m) =>
      m.type === "result" ? m.result : undefined,
    );
    send({ type: "end" });
    const after = await usage(server);
    const endedAt = Date.now();
    const load = await result;
    send({ type: "stop" });
    await exitOf(generator);
    return {
      load,
      serverCpuMicros: after.cpuMicros - before.cpuMicros,
      serverThreadCpu: threadCpuBetween(before.threads, after.threads),
      endedAt,
    };
  } finally {
    if (generator.exitCode === null) generator.kill();
  }
}

/** A server of an interleaved round, with its own load generator. */
interface Contender {
  readonly server: ServerHandle;
  readonly generator: ChildProcess;
  cpuMicros: number;
  threadCpu: ThreadCpu | undefined;
}

async function startGenerator(config: LoadConfig): Promise<ChildProcess> {
  const generator = fork(LOAD_GENERATOR, [], {
    execArgv: [],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const ready = nextMessage<FromLoadGenerator, FromLoadGenerator>(generator, (m) =>
    m.type === "ready" || m.type === "error" ? m : undefined,
  );
  generator.send({
    type: "config",
    config: { ...config, startPaused: true },
  } satisfies ToLoadGenerator);
  const setup = await ready;
  if (setup.type === "error") {
    generator.kill();
    throw new Error(`load generator: ${setup.message}`);
  }
  return generator;
}

/** Loads one server for `ms`, then waits until its calls in flight are back; adds the CPU it used. */
async function turn(contender: Contender, ms: number): Promise<void> {
  const { server, generator } = contender;
  const before = await usage(server);
  generator.send({ type: "resume" } satisfies ToLoadGenerator);
  await sleep(ms);
  const paused = nextMessage<FromLoadGenerator, true>(generator, (m) =>
    m.type === "paused" ? true : undefined,
  );
  generator.send({ type: "pause" } satisfies ToLoadGenerator);
  await paused;
  const after = await usage(server);
  contender.cpuMicros += after.cpuMicros - before.cpuMicros;
  contender.threadCpu = addThreadCpu(
    contender.threadCpu,
    threadCpuBetween(before.threads, after.threads),
  );
}

/**
 * Measures servers side by side: each warms up in turn, then each gets
 * `durationMs` of load in `slices` turns, one server loaded at a time and the
 * order rotating from slice to slice. A server's CPU counts only during its
 * own turns (from just before its load resumes until its last call is back).
 */
export async function measureInterleaved(
  servers: readonly ServerHandle[],
  config: (server: ServerHandle) => LoadConfig,
  warmupMs: number,
  durationMs: number,
  slices: number,
): Promise<Measurement[]> {
  if (!Number.isInteger(slices) || slices < 1) {
    throw new Error(`P2 slices must be a positive integer, not ${slices}`);
  }
  const contenders: Contender[] = [];
  try {
    for (const server of servers) {
      contenders.push({
        server,
        generator: await startGenerator(config(server)),
        cpuMicros: 0,
        threadCpu: { mainMicros: 0, otherMicros: 0 },
      });
    }
    for (const contender of contenders) await turn(contender, warmupMs);
    // The warm-up turns count for nothing.
    for (const contender of contenders) {
      contender.cpuMicros = 0;
      contender.threadCpu = { mainMicros: 0, otherMicros: 0 };
    }
    for (const { generator } of contenders)
      generator.send({ type: "begin" } satisfies ToLoadGenerator);
    for (let slice = 0; slice < slices; slice++) {
      for (const contender of roundOrder(contenders, slice)) {
        await turn(contender, durationMs / slices);
      }
    }
    const measurements: Measurement[] = [];
    for (const { generator, cpuMicros, threadCpu } of contenders) {
      const result = nextMessage<FromLoadGenerator, LoadResult>(generator, (m) =>
        m.type === "result" ? m.result : undefined,
      );
      generator.send({ type: "end" } satisfies ToLoadGenerator);
      measurements.push({
        load: await result,
        serverCpuMicros: cpuMicros,
        serverThreadCpu: threadCpu,
        endedAt: Date.now(),
      });
    }
    return measurements;
  } finally {
    for (const { generator } of contenders) {
      if (generator.exitCode !== null) continue;
      generator.send({ type: "stop" } satisfies ToLoadGenerator);
    }
    await Promise.all(
      contenders.map(({ generator }) =>
        Promise.race([exitOf(generator), sleep(5000).then(() => generator.kill())]),
      ),
    );
  }
}

export function toTargetResult(target: P2Target, measurement: Measurement): P2TargetResult {
  const { load, serverCpuMicros, serverThreadCpu } = measurement;
  const perCall = (micros: number) => (load.calls === 0 ? Number.NaN : micros / load.calls);
  return {
    ...load,
    target,
    requestsPerSecond: load.calls / (load.elapsedMs / 1000),
    serverCpuMs: serverCpuMicros / 1000,
    cpuMicrosPerCall: perCall(serverCpuMicros),
    mainThreadCpuMicrosPerCall:
      serverThreadCpu === undefined ? undefined : perCall(serverThreadCpu.mainMicros),
    serverBusy: serverCpuMicros / 1000 / load.elapsedMs,
  };
}

/** The median, or undefined if any value is. */
function medianOfAll(values: readonly (number | undefined)[]): number | undefined {
  const known = values.filter((value) => value !== undefined);
  return known.length === values.length && known.length > 0 ? median(known) : undefined;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  if (sorted.length % 2 === 1) return sorted[middle] as number;
  return ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

/** One target's measurements of every round as one line of figures. */
export function summariseTarget(measurements: readonly P2TargetResult[]): P2TargetSummary {
  const first = measurements[0];
  if (first === undefined) throw new Error("no measurement to summarise");
  const of = (pick: (result: P2TargetResult) => number) => median(measurements.map(pick));
  const sum = (pick: (result: P2TargetResult) => number) =>
    measurements.reduce((total, result) => total + pick(result), 0);
  const cpu = measurements.map((result) => result.cpuMicrosPerCall);
  return {
    target: first.target,
    requestsPerSecond: of((r) => r.requestsPerSecond),
    serverCpuMs: of((r) => r.serverCpuMs),
    cpuMicrosPerCall: of((r) => r.cpuMicrosPerCall),
    mainThreadCpuMicrosPerCall: medianOfAll(measurements.map((r) => r.mainThreadCpuMicrosPerCall)),
    cpuMicrosPerCallRange: [Math.min(...cpu), Math.max(...cpu)],
    serverBusy: of((r) => r.serverBusy),
    calls: sum((r) => r.calls),
    accepted: sum((r) => r.accepted),
    refused: sum((r) => r.refused),
    failed: sum((r) => r.failed),
    elapsedMs: sum((r) => r.elapsedMs),
    p50Ms: of((r) => r.p50Ms),
    p99Ms: of((r) => r.p99Ms),
    firstProblem: measurements.find((r) => r.firstProblem !== undefined)?.firstProblem,
  };
}

/** The median of each round's runtime-to-echo ratio; undefined unless every round has both. */
export function ratioOverRounds(
  rounds: readonly (readonly P2TargetResult[])[],
  runtimeTarget: P2Target,
  echoTarget: P2Target,
): P2Ratio | undefined {
  const perRound: P2RoundRatio[] = [];
  for (const round of rounds) {
    const runtime = round.find((result) => result.target === runtimeTarget);
    const echo = round.find((result) => result.target === echoTarget);
    if (runtime === undefined || echo === undefined) return undefined;
    perRound.push({
      throughput: runtime.requestsPerSecond / echo.requestsPerSecond,
      cpuPerCall: runtime.cpuMicrosPerCall / echo.cpuMicrosPerCall,
      mainThreadCpuPerCall:
        runtime.mainThreadCpuMicrosPerCall === undefined ||
        echo.mainThreadCpuMicrosPerCall === undefined
          ? undefined
          : runtime.mainThreadCpuMicrosPerCall / echo.mainThreadCpuMicrosPerCall,
    });
  }
  if (perRound.length === 0) return undefined;
  return {
    throughput: median(perRound.map((ratio) => ratio.throughput)),
    cpuPerCall: median(perRound.map((ratio) => ratio.cpuPerCall)),
    mainThreadCpuPerCall: medianOfAll(perRound.map((ratio) => ratio.mainThreadCpuPerCall)),
    rounds: perRound,
  };
}

/** Round `round`'s order: the targets rotated by `round`. */
export function roundOrder<T>(targets: readonly T[], round: number): T[] {
  const shift = targets.length === 0 ? 0 : round % targets.length;
  return [...targets.slice(shift), ...targets.slice(0, shift)];
}

/** Runs P2 and returns its figures; {@link formatP2Summary} prints them. */
export async function runP2(options: P2Options = {}): Promise<P2Result> {
  const began = Date.now();
  const log = options.log ?? (() => {});
  const settings = {
    callers: options.callers ?? 64,
    connections: options.connections ?? 8,
    sessions: options.sessions ?? 64,
    warmupMs: options.warmupMs ?? 1500,
    durationMs: options.durationMs ?? 6000,
    rounds: options.rounds ?? 3,
    slices: options.slices ?? 6,
    targets: options.targets ?? P2_TARGETS,
    profile: options.profile ?? false,
    profileTargets: options.profileTargets ?? (["runtime-grpc-js", "grpc-js-echo"] as const),
    profileDurationMs: options.profileDurationMs ?? 4000,
    profileTop: options.profileTop ?? 15,
  };
  const loadConfig = (address: string): LoadConfig => ({
    address,
    callers: settings.callers,
    connections: settings.connections,
    sessions: settings.sessions,
  });

  if (!Number.isInteger(settings.rounds) || settings.rounds < 1) {
    throw new Error(`P2 rounds must be a positive integer, not ${settings.rounds}`);
  }
  const roundResults: P2TargetResult[][] = [];
  for (let round = 0; round < settings.rounds; round++) {
    const order = roundOrder(settings.targets, round);
    log(
      `P2: round ${round + 1}/${settings.rounds}, measuring ${order.join(", ")} side by side (${settings.callers} callers, ${settings.durationMs} ms each in ${settings.slices} turns)`,
    );
    const servers: ServerHandle[] = [];
    try {
      for (const target of order) servers.push(await startServer(target, []));
      const measurements = await measureInterleaved(
        servers,
        (server) => loadConfig(server.address),
        settings.warmupMs,
        settings.durationMs,
        settings.slices,
      );
      roundResults.push(
        measurements.map((measurement, index) =>
          toTargetResult(order[index] as P2Target, measurement),
        ),
      );
    } finally {
      await Promise.all(servers.map((server) => server.stop()));
    }
  }
  const results = settings.targets.map((target) =>
    summariseTarget(
      roundResults.flatMap((round) => round.filter((result) => result.target === target)),
    ),
  );

  const profiles: P2Profile[] = [];
  if (settings.profile) {
    for (const target of settings.profileTargets) {
      log(`P2: profiling ${target} (${settings.profileDurationMs} ms)`);
      const directory = await mkdtemp(join(tmpdir(), `macp-p2-${target}-`));
      try {
        const server = await startServer(target, ["--cpu-prof", `--cpu-prof-dir=${directory}`]);
        let measurement: Measurement;
        try {
          measurement = await measure(
            server,
            loadConfig(server.address),
            settings.warmupMs,
            settings.profileDurationMs,
          );
        } finally {
          await server.stop();
        }
        const stoppedAt = Date.now();
        const file = (await readdir(directory)).find((name) => name.endsWith(".cpuprofile"));
        if (file === undefined) throw new Error(`no .cpuprofile written for ${target}`);
        const summary = await summariseCpuProfile(join(directory, file), {
          top: settings.profileTop,
          windowMs: settings.profileDurationMs,
          endOffsetMs: stoppedAt - measurement.endedAt,
        });
        profiles.push({
          target,
          cpuMicrosPerCall: toTargetResult(target, measurement).cpuMicrosPerCall,
          summary,
        });
      } finally {
        await rm(directory, { recursive: true, force: true });
      }
    }
  }

  return {
    settings,
    results,
    roundResults,
    runtimeVsConnectEcho: ratioOverRounds(roundResults, "runtime-connect", "connect-echo"),
    runtimeVsGrpcJsEcho: ratioOverRounds(roundResults, "runtime-grpc-js", "grpc-js-echo"),
    profiles,
    totalMs: Date.now() - began,
  };
}

const percent = (share: number) => `${(share * 100).toFixed(1)}%`;

/** The P2 figures as a plain-text report. */
export function formatP2Summary(result: P2Result): string {
  const { settings } = result;
  const rounds = settings.rounds === 1 ? "one round" : `median of ${settings.rounds} rounds`;
  const lines = [
    `P2: Send throughput, ${settings.callers} concurrent callers over ${settings.connections} HTTP/2 connections (gRPC, @grpc/grpc-js client in its own process), ${settings.durationMs} ms per server after ${settings.warmupMs} ms warm-up, ${rounds} (each round starts every server afresh and loads them in turns, ${settings.slices} each)`,
    "",
    "server           requests/s  server CPU/call  (rounds' range)  main thread  server busy  p50 ms  p99 ms  calls     accepted  refused  failed",
  ];
  for (const r of result.results) {
    const [lowest, highest] = r.cpuMicrosPerCallRange;
    lines.push(
      [
        r.target.padEnd(16),
        r.requestsPerSecond.toFixed(0).padStart(10),
        `${r.cpuMicrosPerCall.toFixed(1)} µs`.padStart(15),
        `${lowest.toFixed(0)}–${highest.toFixed(0)} µs`.padStart(16),
        (r.mainThreadCpuMicrosPerCall === undefined
          ? "–"
          : `${r.mainThreadCpuMicrosPerCall.toFixed(1)} µs`
        ).padStart(12),
        percent(r.serverBusy).padStart(12),
        r.p50Ms.toFixed(2).padStart(7),
        r.p99Ms.toFixed(2).padStart(7),
        String(r.calls).padStart(9),
        String(r.accepted).padStart(9),
        String(r.refused).padStart(8),
        String(r.failed).padStart(7),
      ].join(" ") + (r.firstProblem === undefined ? "" : `  first problem: ${r.firstProblem}`),
    );
  }
  if (result.results.some((r) => r.mainThreadCpuMicrosPerCall !== undefined)) {
    lines.push(
      "(main thread: the part of the CPU per call on the thread that runs JavaScript; the rest is V8's helper threads, mostly garbage collection)",
    );
  }
  if (result.results.some((r) => r.serverBusy < 0.8)) {
    lines.push(
      "(a server busy well below 100% was waiting for the load generator: its requests/s is a floor, compare CPU per call)",
    );
  }
  lines.push("");
  const describe = (name: string, value: P2Ratio | undefined) => {
    if (value === undefined) return;
    const each = (pick: (ratio: P2RoundRatio) => number | undefined) =>
      value.rounds.length === 1
        ? ""
        : ` (rounds: ${value.rounds.map((ratio) => pick(ratio)?.toFixed(2)).join(", ")})`;
    const mainThread =
      value.mainThreadCpuPerCall === undefined
        ? ""
        : `, on the main thread ${value.mainThreadCpuPerCall.toFixed(2)}×${each((ratio) => ratio.mainThreadCpuPerCall)}`;
    lines.push(
      `${name}: throughput ${value.throughput.toFixed(2)}×${each((ratio) => ratio.throughput)}, CPU per call ${value.cpuPerCall.toFixed(2)}×${each((ratio) => ratio.cpuPerCall)}${mainThread}`,
    );
  };
  describe("runtime-grpc-js / grpc-js-echo", result.runtimeVsGrpcJsEcho);
  describe("runtime-connect / connect-echo", result.runtimeVsConnectEcho);
  for (const profile of result.profiles) {
    const perCall = profile.cpuMicrosPerCall;
    lines.push(
      "",
      `Profile of ${profile.target} (node --cpu-prof; ${perCall.toFixed(1)} µs CPU per call while profiled, ${percent(profile.summary.idleShare)} idle)`,
      "  by component (share of busy time ≈ µs per call):",
    );
    for (const { component, share } of profile.summary.components.slice(0, 12)) {
      lines.push(
        `    ${component.padEnd(18)} ${percent(share).padStart(6)}  ≈ ${(share * perCall).toFixed(1)} µs`,
      );
    }
    lines.push("  inclusive (time in the component and what it called; overlapping):");
    for (const { component, share } of profile.summary.inclusive.filter((entry) =>
      entry.component.startsWith("@macp/"),
    )) {
      lines.push(
        `    ${component.padEnd(18)} ${percent(share).padStart(6)}  ≈ ${(share * perCall).toFixed(1)} µs`,
      );
    }
    lines.push("  top frames by self time:");
    for (const frame of profile.summary.top) {
      lines.push(
        `    ${percent(frame.selfShare).padStart(6)}  [${frame.component}] ${frame.frame}`,
      );
    }
  }
  lines.push("", `total ${(result.totalMs / 1000).toFixed(1)} s`);
  return lines.join("\n");
}
