// The soak: the real runtime server (see soak-server.ts) fed whole decision
// sessions at a steady rate for a bounded time, with terminal sessions
// evicted after a short retention, while the driver samples the server's
// memory after a full collection. Memory that keeps growing once the
// retention has turned over is a leak; the fitted slope after warm-up says
// how fast.

import { type ChildProcess, fork } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { MACPRuntimeService } from "@macp/proto";
import { decisionLifecycle, sessionIdFor } from "../traffic.js";
import type { FromSoakServer, ToSoakServer } from "./soak-wire.js";

export type SoakStore = "file" | "memory";
/** The runtime's listener the load goes to, over gRPC either way. */
export type SoakListener = "grpc" | "connect";

export interface SoakOptions {
  /** Length of the run. Default 4 minutes. */
  readonly minutes?: number;
  /** Samples before this are warm-up and left out of the fit. Default 2 minutes. */
  readonly warmupMinutes?: number;
  /** `file` (MACP_DATA_DIR in a temporary directory) or `memory` (MACP_MEMORY_ONLY). Default file. */
  readonly store?: SoakStore;
  /**
   * `grpc`: the gRPC listener (MACP_BIND_ADDR, @grpc/grpc-js); `connect`: the
   * Connect listener (MACP_HTTP_BIND_ADDR, Connect on node:http2), which
   * browsers use. Default grpc.
   */
  readonly listener?: SoakListener;
  /** Accepted messages per second over all sessions. Default 200. */
  readonly rate?: number;
  /** MACP_SESSION_RETENTION_SECS. Default 60. */
  readonly retentionSecs?: number;
  /** MACP_SESSION_DISK_RETENTION_SECS (file store); 0 keeps every log. Default: `retentionSecs`. */
  readonly diskRetentionSecs?: number;
  /** MACP_CLEANUP_INTERVAL_SECS. Default 10. */
  readonly cleanupSecs?: number;
  /** Seconds between memory samples. Default 15. */
  readonly sampleSecs?: number;
  /** Sessions in flight at once. Default 64. */
  readonly concurrency?: number;
  /** When set, heap snapshots of the server are written here at the end of warm-up and at the end. */
  readonly snapshotDir?: string;
  /** Progress lines. Default: none. */
  readonly log?: (line: string) => void;
}

export interface SoakSample {
  /** Seconds since the load started. */
  readonly atSecs: number;
  readonly rssBytes: number;
  readonly heapTotalBytes: number;
  /** After a full collection. */
  readonly heapUsedBytes: number;
  readonly externalBytes: number;
  /** Messages accepted so far. */
  readonly accepted: number;
}

export interface SoakResult {
  readonly settings: Required<Omit<SoakOptions, "log" | "snapshotDir">>;
  readonly samples: readonly SoakSample[];
  readonly accepted: number;
  /** Sends that were not accepted, by error code or failure. */
  readonly refused: ReadonlyMap<string, number>;
  /** Least-squares slopes over the samples after warm-up, MB per minute. */
  readonly heapGrowthMbPerMin: number;
  readonly rssGrowthMbPerMin: number;
  /**
   * Least-squares slope of heapUsed over accepted messages after warm-up: what
   * each message leaves behind, whatever rate a busy machine let the run reach.
   */
  readonly heapBytesPerMessage: number;
  /** Messages accepted per second after warm-up. */
  readonly achievedRate: number;
  readonly snapshots: readonly string[];
}

const SERVER = fileURLToPath(new URL("./soak-server.js", import.meta.url));
const MB = 1024 * 1024;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function nextMessage<T>(
  child: ChildProcess,
  accept: (m: FromSoakServer) => T | undefined,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: FromSoakServer) => {
      if (message.type === "error") {
        cleanup();
        reject(new Error(`soak server: ${message.message}`));
        return;
      }
      const value = accept(message);
      if (value === undefined) return;
      cleanup();
      resolve(value);
    };
    const onExit = (code: number | null) => {
      cleanup();
      reject(new Error(`soak server exited (${code}) before answering`));
    };
    const cleanup = () => {
      child.off("message", onMessage);
      child.off("exit", onExit);
    };
    child.on("message", onMessage);
    child.once("exit", onExit);
  });
}

/** Least-squares slope of y over x. */
export function slope(points: readonly { x: number; y: number }[]): number {
  const n = points.length;
  if (n < 2) return Number.NaN;
  const meanX = points.reduce((sum, p) => sum + p.x, 0) / n;
  const meanY = points.reduce((sum, p) => sum + p.y, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.x - meanX) * (p.y - meanY);
    den += (p.x - meanX) ** 2;
  }
  return den === 0 ? Number.NaN : num / den;
}

/** Hands out send slots `1000 / rate` ms apart, so the load is steady whatever the concurrency. */
function pacer(rate: number): () => Promise<void> {
  const gapMs = 1000 / rate;
  let next = performance.now();
  return async () => {
    const now = performance.now();
    next = Math.max(next + gapMs, now - 1000); // never more than a second of catch-up burst
    const wait = next - now;
    if (wait > 0) await sleep(wait);
  };
}

export async function runSoak(options: SoakOptions = {}): Promise<SoakResult> {
  const settings = {
    minutes: options.minutes ?? 4,
    warmupMinutes: options.warmupMinutes ?? 2,
    store: options.store ?? "file",
    listener: options.listener ?? "grpc",
    rate: options.rate ?? 200,
    retentionSecs: options.retentionSecs ?? 60,
    diskRetentionSecs: options.diskRetentionSecs ?? options.retentionSecs ?? 60,
    cleanupSecs: options.cleanupSecs ?? 10,
    sampleSecs: options.sampleSecs ?? 15,
    concurrency: options.concurrency ?? 64,
  } satisfies SoakResult["settings"];
  const log = options.log ?? (() => {});
  const dataDir = await mkdtemp(join(tmpdir(), "macp-soak-"));
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "",
    MACP_ALLOW_INSECURE: "1",
    MACP_BIND_ADDR: "127.0.0.1:0",
    MACP_LOG_LEVEL: "error",
    MACP_SESSION_RETENTION_SECS: String(settings.retentionSecs),
    MACP_CLEANUP_INTERVAL_SECS: String(settings.cleanupSecs),
    MACP_SHUTDOWN_DRAIN_SECS: "1",
    ...(settings.store === "memory"
      ? { MACP_MEMORY_ONLY: "1" }
      : {
          MACP_DATA_DIR: dataDir,
          MACP_SESSION_DISK_RETENTION_SECS: String(settings.diskRetentionSecs),
        }),
  };
  const server = fork(SERVER, [], {
    env,
    execArgv: ["--expose-gc"],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const send = (message: ToSoakServer) => server.send(message);
  let sessionManager: Http2SessionManager | undefined;
  // Set when the run ends early (the server died): the workers stop sending.
  let stopped = false;
  try {
    const listening = await nextMessage(server, (m) => (m.type === "listening" ? m : undefined));
    const url = settings.listener === "connect" ? listening.httpUrl : listening.url;
    if (url === undefined) throw new Error("the soak server has no Connect listener");
    log(
      `server ${url} (${settings.listener} listener): ${settings.store} store, retention ${describeRetention(settings)}`,
    );
    sessionManager = new Http2SessionManager(url);
    const client = createClient(
      MACPRuntimeService,
      createGrpcTransport({ baseUrl: url, sessionManager }),
    );

    const sample = async (atSecs: number): Promise<SoakSample> => {
      const reply = nextMessage(server, (m) => (m.type === "sample" ? m : undefined));
      send({ type: "sample" });
      const m = await reply;
      return { atSecs, ...m, accepted };
    };
    const snapshot = async (name: string): Promise<string | undefined> => {
      if (options.snapshotDir === undefined) return undefined;
      const reply = nextMessage(server, (m) => (m.type === "snapshot" ? m.path : undefined));
      send({ type: "snapshot", path: join(options.snapshotDir, `${name}.heapsnapshot`) });
      const path = await reply;
      log(`heap snapshot ${path}`);
      return path;
    };

    let accepted = 0;
    const refused = new Map<string, number>();
    const note = (reason: string) => refused.set(reason, (refused.get(reason) ?? 0) + 1);
    const endAt = performance.now() + settings.minutes * 60_000;
    const slot = pacer(settings.rate);
    let nextSession = 0;

    // Each worker runs whole sessions one after another, one message at a
    // time, every message on a slot of the shared pacer. Every session has
    // agents of its own, so per-sender state turns over as it would with a
    // changing population of agents.
    const worker = async (): Promise<void> => {
      while (!stopped && performance.now() < endAt) {
        const n = nextSession++;
        const agent = (role: string) => `agent://soak-${n}-${role}`;
        const traffic = decisionLifecycle(sessionIdFor(n), {
          initiator: agent("initiator"),
          evaluators: [agent("e1"), agent("e2"), agent("e3")],
        });
        for (const { envelope } of traffic) {
          await slot();
          if (stopped) return;
          try {
            const response = await client.send(
              { envelope },
              { headers: { authorization: `Bearer ${envelope.sender}` } },
            );
            if (response.ack?.ok === true) accepted++;
            else note(response.ack?.error?.code ?? "no ack");
          } catch (error) {
            note(error instanceof Error ? error.message : String(error));
          }
        }
      }
    };

    const samples: SoakSample[] = [];
    const snapshots: string[] = [];
    const started = performance.now();
    const workers = Array.from({ length: settings.concurrency }, () => worker());
    let warmupSnapshotTaken = false;
    for (let at = settings.sampleSecs; at <= settings.minutes * 60; at += settings.sampleSecs) {
      await sleep(Math.max(0, started + at * 1000 - performance.now()));
      const s = await sample(at);
      samples.push(s);
      log(
        `${(at / 60).toFixed(2).padStart(6)} min  rss ${(s.rssBytes / MB).toFixed(1)} MB  ` +
          `heapTotal ${(s.heapTotalBytes / MB).toFixed(1)} MB  ` +
          `heap ${(s.heapUsedBytes / MB).toFixed(1)} MB  external ${(s.externalBytes / MB).toFixed(1)} MB  ` +
          `accepted ${s.accepted}`,
      );
      if (!warmupSnapshotTaken && at >= settings.warmupMinutes * 60) {
        warmupSnapshotTaken = true;
        const path = await snapshot("after-warmup");
        if (path !== undefined) snapshots.push(path);
      }
    }
    await Promise.all(workers);
    const endSnapshot = await snapshot("end");
    if (endSnapshot !== undefined) snapshots.push(endSnapshot);

    const measured = samples.filter((s) => s.atSecs >= settings.warmupMinutes * 60);
    const fit = (value: (s: SoakSample) => number) =>
      slope(measured.map((s) => ({ x: s.atSecs / 60, y: value(s) / MB })));
    const first = measured[0];
    const last = measured[measured.length - 1];
    return {
      settings,
      samples,
      accepted,
      refused,
      heapGrowthMbPerMin: fit((s) => s.heapUsedBytes),
      rssGrowthMbPerMin: fit((s) => s.rssBytes),
      heapBytesPerMessage: slope(measured.map((s) => ({ x: s.accepted, y: s.heapUsedBytes }))),
      achievedRate:
        first === undefined || last === undefined || last.atSecs === first.atSecs
          ? Number.NaN
          : (last.accepted - first.accepted) / (last.atSecs - first.atSecs),
      snapshots,
    };
  } finally {
    stopped = true;
    sessionManager?.abort();
    if (server.exitCode === null && server.signalCode === null) {
      const exited = new Promise<void>((resolve) => server.once("exit", () => resolve()));
      send({ type: "stop" });
      await Promise.race([exited, sleep(10_000).then(() => server.kill("SIGKILL"))]);
    }
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** The table `npm run soak` prints. */
export function formatSoak(result: SoakResult): string[] {
  const { settings } = result;
  const lines = [
    `soak: ${settings.minutes} min, ${settings.store} store, ${settings.listener} listener, ` +
      `${settings.rate} msg/s of whole decision sessions ` +
      `(9 messages each), retention ${describeRetention(settings)}, sweep every ${settings.cleanupSecs} s`,
    "minute   RSS MB   heapTotal MB   heapUsed MB   external MB   accepted",
  ];
  for (const s of result.samples) {
    lines.push(
      `${(s.atSecs / 60).toFixed(2).padStart(6)}  ${(s.rssBytes / MB).toFixed(1).padStart(7)}  ` +
        `${(s.heapTotalBytes / MB).toFixed(1).padStart(13)}  ${(s.heapUsedBytes / MB).toFixed(1).padStart(12)}  ` +
        `${(s.externalBytes / MB).toFixed(1).padStart(12)}  ` +
        `${String(s.accepted).padStart(9)}`,
    );
  }
  const refused = [...result.refused].map(([code, n]) => `${code} ×${n}`).join(", ");
  lines.push(
    `accepted ${result.accepted} messages${refused === "" ? "" : `; not accepted: ${refused}`}`,
    `growth after ${settings.warmupMinutes} min warm-up (least squares): ` +
      `heapUsed ${result.heapGrowthMbPerMin.toFixed(3)} MB/min, RSS ${result.rssGrowthMbPerMin.toFixed(3)} MB/min ` +
      `at ${result.achievedRate.toFixed(1)} msg/s`,
    `heapUsed per accepted message after warm-up: ${result.heapBytesPerMessage.toFixed(1)} bytes ` +
      `(${((result.heapBytesPerMessage * settings.rate * 60) / MB).toFixed(3)} MB/min at ${settings.rate} msg/s; ` +
      "an upper bound when the rate rose during the run, since more sessions are then within retention)",
  );
  return lines;
}

function describeRetention(settings: SoakResult["settings"]): string {
  const memory = `${settings.retentionSecs} s`;
  if (settings.store === "memory") return memory;
  const disk = settings.diskRetentionSecs === 0 ? "kept" : `${settings.diskRetentionSecs} s`;
  return `${memory} (on disk: ${disk})`;
}
