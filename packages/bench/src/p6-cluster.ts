// Benchmark P6: Send throughput over gRPC on the PostgreSQL backend with 1, 2
// and 4 server processes (MACP_WORKERS on one port), beside one file-store
// server, and how many messages each PostgreSQL WAL flush carried.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startThrowawayPostgres } from "@macp/store-postgres/testing";
import pg from "pg";
import { measure, type ServerHandle, startRuntimeServer } from "./p2/run-p2.js";

export interface P6Options {
  readonly workers?: readonly number[];
  readonly callers?: number;
  readonly connections?: number;
  readonly sessions?: number;
  readonly warmupMs?: number;
  readonly durationMs?: number;
  readonly log?: (line: string) => void;
}

export interface P6Row {
  readonly label: string;
  readonly requestsPerSecond: number;
  readonly accepted: number;
  readonly refused: number;
  readonly failed: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Accepted messages per WAL flush (PostgreSQL rows only). */
  readonly messagesPerFlush: number | undefined;
  readonly firstProblem: string | undefined;
}

export interface P6Result {
  readonly settings: Required<Omit<P6Options, "log">>;
  readonly rows: readonly P6Row[];
  readonly cores: number;
}

/** WAL flushes so far (pg_stat_wal, PostgreSQL 14+): one per group of commits made durable together. */
async function walFlushes(url: string): Promise<number> {
  const client = new pg.Client(url);
  await client.connect();
  try {
    const result = await client.query<{ wal_sync: string }>("SELECT wal_sync FROM pg_stat_wal");
    return Number(result.rows[0]?.wal_sync ?? 0);
  } finally {
    await client.end();
  }
}

export async function runP6(options: P6Options = {}): Promise<P6Result> {
  const { availableParallelism } = await import("node:os");
  const settings = {
    workers: options.workers ?? [1, 2, 4],
    callers: options.callers ?? 64,
    connections: options.connections ?? 8,
    sessions: options.sessions ?? 64,
    warmupMs: options.warmupMs ?? 2000,
    durationMs: options.durationMs ?? 6000,
  };
  const log = options.log ?? (() => {});
  const rows: P6Row[] = [];
  const run = async (label: string, server: ServerHandle, url?: string): Promise<void> => {
    // Workers share the metrics port, so one worker's CPU says nothing; P6 reports throughput.
    const handle: ServerHandle = { ...server, cpuMicros: async () => 0 };
    try {
      const before = url === undefined ? 0 : await walFlushes(url);
      const { load } = await measure(
        handle,
        {
          address: server.address,
          callers: settings.callers,
          connections: settings.connections,
          sessions: settings.sessions,
        },
        settings.warmupMs,
        settings.durationMs,
      );
      const flushes = url === undefined ? 0 : (await walFlushes(url)) - before;
      rows.push({
        label,
        requestsPerSecond: load.calls / (load.elapsedMs / 1000),
        accepted: load.accepted,
        refused: load.refused,
        failed: load.failed,
        p50Ms: load.p50Ms,
        p99Ms: load.p99Ms,
        // The flushes also cover the warm-up's tail and the session starts; a floor.
        messagesPerFlush: url === undefined || flushes === 0 ? undefined : load.accepted / flushes,
        firstProblem: load.firstProblem,
      });
    } finally {
      await server.stop();
    }
  };

  log("P6: one file-store server");
  const dataDir = await mkdtemp(join(tmpdir(), "macp-p6-"));
  try {
    await run(
      "file store, 1 process",
      await startRuntimeServer([], "grpc-js", { MACP_DATA_DIR: dataDir }),
    );
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }

  // fsync on, as in production: the figures include durable commits.
  const db = await startThrowawayPostgres({ durable: true });
  try {
    for (const workers of settings.workers) {
      log(`P6: PostgreSQL, ${workers} worker(s)`);
      const url = await db.createDatabase(`bench_${workers}`);
      const server = await startRuntimeServer([], "grpc-js", {
        MACP_STORAGE_BACKEND: "postgres",
        MACP_POSTGRES_URL: url,
        MACP_WORKERS: String(workers),
      });
      await run(`PostgreSQL, ${workers} worker${workers === 1 ? "" : "s"}`, server, url);
    }
  } finally {
    await db.stop();
  }
  return { settings, rows, cores: availableParallelism() };
}

export function formatP6(result: P6Result): string[] {
  const { settings } = result;
  const lines = [
    `P6: Send throughput over gRPC, ${settings.callers} callers over ${settings.connections} connections, ${settings.sessions} sessions, ${settings.durationMs} ms each, on ${result.cores} cores (load generator and PostgreSQL on the same machine)`,
    "",
    "server                     requests/s  p50 ms  p99 ms  accepted  refused  failed  messages/WAL flush",
  ];
  for (const row of result.rows) {
    lines.push(
      [
        row.label.padEnd(26),
        row.requestsPerSecond.toFixed(0).padStart(10),
        row.p50Ms.toFixed(2).padStart(7),
        row.p99Ms.toFixed(2).padStart(7),
        String(row.accepted).padStart(9),
        String(row.refused).padStart(8),
        String(row.failed).padStart(7),
        (row.messagesPerFlush === undefined ? "-" : row.messagesPerFlush.toFixed(1)).padStart(19),
      ].join(" ") + (row.firstProblem === undefined ? "" : `  first problem: ${row.firstProblem}`),
    );
  }
  return lines;
}
