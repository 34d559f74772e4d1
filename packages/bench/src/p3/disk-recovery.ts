// P4 from disk: recovery of 1,000 sessions holding 100,000 entries in all from
// a file store, in entries per second: opening the store, reading and decoding
// every log, and replaying every session in the kernel (`runtime.recover()`).
// The same history is also read and decoded alone (`store.loadAll()`), to show
// how the time splits between the disk and the kernel's replay.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createRuntime, type MacpRuntime } from "@macp/core";
import { createFileStore } from "@macp/store-file";
import {
  decisionHistory,
  envelope,
  evaluationPayload,
  identities,
  median,
  openSessions,
  sessionIdFor,
  UNLIMITED,
  VOTER,
} from "../traffic.js";
import { collectGarbage } from "./durable-send.js";

/**
 * What each session's 100 entries are, as in the in-memory P4:
 * - "mix": a whole decision (start, 4 proposals, 40 evaluations, 8 objections,
 *   46 votes, commitment), from `decisionHistory`;
 * - "evaluations": start, one proposal and 98 evaluations.
 */
export type P4DiskShape = "mix" | "evaluations";

export interface P4DiskOptions {
  /** Default "mix". */
  readonly shape?: P4DiskShape;
  /** Default 1000. */
  readonly sessions?: number;
  /** Entries in all; 100 per session with "mix". Default 100,000. */
  readonly entries?: number;
  /** Measured recoveries, after one warm-up. Default 5. */
  readonly rounds?: number;
  /** Parent of the store's temporary directory. Default `os.tmpdir()`. */
  readonly directory?: string;
}

export interface P4DiskResult {
  readonly shape: P4DiskShape;
  readonly sessions: number;
  readonly entries: number;
  readonly rounds: number;
  readonly logBytes: number;
  /** Median entries per second of the whole recovery: open, read, decode, replay. Goal ≥ 1.5 M. */
  readonly entriesPerSecond: number;
  /** Median ms of the whole recovery. */
  readonly totalMs: number;
  /** Median ms to open the store and read and decode every log (`loadAll` alone). */
  readonly readDecodeMs: number;
  /** Median ms of that spent opening the store (directory checks, tombstones, journal). */
  readonly openMs: number;
  /** `entries / readDecodeMs`: the store's share as a rate. */
  readonly readDecodeEntriesPerSecond: number;
}

const DEFAULTS = { sessions: 1000, entries: 100_000, rounds: 5 } as const;
const clock = { now: () => 1_750_000_000_000 };

export async function runP4Disk(options: P4DiskOptions = {}): Promise<P4DiskResult> {
  const shape = options.shape ?? "mix";
  const sessions = options.sessions ?? DEFAULTS.sessions;
  const entries = options.entries ?? DEFAULTS.entries;
  const rounds = options.rounds ?? DEFAULTS.rounds;
  const directory = await mkdtemp(join(options.directory ?? tmpdir(), "macp-p4-disk-"));
  try {
    const logBytes = await writeHistory(directory, shape, sessions, entries);
    const totals: number[] = [];
    const reads: number[] = [];
    const opens: number[] = [];
    for (let round = 0; round <= rounds; round++) {
      collectGarbage();
      const total = await timeRecovery(directory, entries);
      collectGarbage();
      const read = await timeLoad(directory, entries);
      // Round 0 warms the JIT (and the page cache) and is not counted.
      if (round === 0) continue;
      totals.push(total);
      reads.push(read.totalMs);
      opens.push(read.openMs);
    }
    const totalMs = median(totals);
    const readDecodeMs = median(reads);
    return {
      shape,
      sessions,
      entries,
      rounds,
      logBytes,
      entriesPerSecond: entries / (totalMs / 1000),
      totalMs,
      readDecodeMs,
      openMs: median(opens),
      readDecodeEntriesPerSecond: entries / (readDecodeMs / 1000),
    };
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

/**
 * Writes the history through the runtime (untimed), every session concurrently,
 * each one message at a time, so that the group commits are shared.
 */
async function writeHistory(
  directory: string,
  shape: P4DiskShape,
  sessions: number,
  entries: number,
): Promise<number> {
  const store = createFileStore({ directory });
  const runtime = createRuntime({ clock, store, limits: UNLIMITED });
  if (shape === "mix") await writeMixedHistory(runtime, sessions, entries);
  else await writeEvaluationHistory(runtime, sessions, entries);
  await runtime.close(); // closes the store: the last checkpoint empties the journal
  return store.stats().bytesWritten;
}

async function writeMixedHistory(
  runtime: MacpRuntime,
  sessions: number,
  entries: number,
): Promise<void> {
  const histories = Array.from({ length: sessions }, (_, i) => decisionHistory(sessionIdFor(i)));
  if ((histories[0]?.length ?? 0) * sessions !== entries) {
    throw new Error(`"mix" writes ${histories[0]?.length} entries per session`);
  }
  await Promise.all(
    histories.map(async (history) => {
      for (const { envelope: env, as } of history) {
        const ack = await runtime.send(env, as);
        if (ack.isErr()) throw new Error(`refused: ${ack.error.code} ${ack.error.message}`);
      }
    }),
  );
}

async function writeEvaluationHistory(
  runtime: MacpRuntime,
  sessions: number,
  entries: number,
): Promise<void> {
  const ids = await openSessions(runtime, sessions);
  const perSession = entries / sessions - 2; // SessionStart and Proposal are already there
  await Promise.all(
    ids.map(async (id) => {
      for (let k = 0; k < perSession; k++) {
        const ack = await runtime.send(
          envelope(id, "Evaluation", `e${k}`, VOTER, evaluationPayload),
          identities.voter,
        );
        if (ack.isErr()) throw new Error(`refused: ${ack.error.code}`);
      }
    }),
  );
}

async function timeRecovery(directory: string, entries: number): Promise<number> {
  const started = process.hrtime.bigint();
  const store = createFileStore({ directory });
  const runtime = createRuntime({ clock, store, limits: UNLIMITED });
  const report = await runtime.recover();
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (report.records !== entries || report.quarantined.length > 0) {
    throw new Error(`recovery replayed ${report.records} records`);
  }
  await runtime.close();
  return ms;
}

async function timeLoad(
  directory: string,
  entries: number,
): Promise<{ totalMs: number; openMs: number }> {
  const started = process.hrtime.bigint();
  const store = createFileStore({ directory });
  await store.ready();
  const openMs = Number(process.hrtime.bigint() - started) / 1e6;
  let records = 0;
  for await (const stored of store.loadAll()) {
    if ("records" in stored) records += stored.records.length;
  }
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (records !== entries) throw new Error(`loadAll read ${records} records`);
  await store.close();
  return { totalMs: ms, openMs };
}

/** The lines `npm run bench` prints for P4 from disk. */
export function formatP4Disk(p4: P4DiskResult): string[] {
  const replayMs = p4.totalMs - p4.readDecodeMs;
  return [
    `P4d recovery from disk (file store, warm page cache), ${p4.entries} entries over ${p4.sessions} sessions ` +
      `(${p4.shape === "mix" ? "whole decisions" : "start + proposal + evaluations"}), ` +
      `${(p4.logBytes / 1e6).toFixed(1)} MB of logs: ${(p4.entriesPerSecond / 1e6).toFixed(2)} M entries/s ` +
      `(goal ≥ 1.5; median of ${p4.rounds})`,
    `    ${p4.totalMs.toFixed(1)} ms = open + read + decode ${p4.readDecodeMs.toFixed(1)} ms ` +
      `(${(p4.readDecodeEntriesPerSecond / 1e6).toFixed(2)} M entries/s; opening the store ${p4.openMs.toFixed(1)} ms) ` +
      `+ kernel replay ${replayMs.toFixed(1)} ms`,
  ];
}
