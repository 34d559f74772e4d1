// P3: durable Send throughput with 64 concurrent sessions, through the real
// kernel, on the file store next to the same run on the memory store.
//
// Each of the 64 sessions is driven by its own loop that sends one accepted
// Evaluation at a time and waits for its Ack, the runtime's own pattern: every
// session has at most one append in flight, so the only way to share an fsync
// is across sessions (the file store's journal).
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createMemoryStore, createRuntime, type SessionStore } from "@macp/core";
import type { Envelope } from "@macp/proto";
import { createFileStore, type FileStoreStats } from "@macp/store-file";
import {
  envelope,
  evaluationPayload,
  identities,
  median,
  openSessions,
  UNLIMITED,
  VOTER,
} from "../traffic.js";

export interface P3Options {
  /** Concurrent sessions, one sending loop each. Default 64. */
  readonly sessions?: number;
  /** Accepted messages each session sends in a measured run. Default 1000. */
  readonly messagesPerSession?: number;
  /** Measured runs of each store, alternating, after one warm-up pair. Default 3. */
  readonly rounds?: number;
  /** Parent of the file stores' temporary directories. Default `os.tmpdir()`. */
  readonly directory?: string;
}

/** What the file store did during the measured runs. */
export interface P3FileStats {
  readonly records: number;
  /** Every fdatasync: journal batches, log writes at checkpoints, new journal generations. */
  readonly fsyncs: number;
  readonly journalSyncs: number;
  readonly checkpoints: number;
  /** `records / fsyncs`: the messages each fsync made durable, checkpoints included. */
  readonly recordsPerFsync: number;
  /** `records / journalSyncs`: the records of one group commit. */
  readonly recordsPerBatch: number;
  readonly maxRecordsPerFsync: number;
}

export interface P3Result {
  readonly sessions: number;
  readonly messagesPerRun: number;
  readonly rounds: number;
  readonly directory: string;
  /** Median accepted messages per second, file store. */
  readonly fileMessagesPerSecond: number;
  /** Median accepted messages per second, memory store. */
  readonly memoryMessagesPerSecond: number;
  /** `fileMessagesPerSecond / memoryMessagesPerSecond`; goal ≥ 0.5. */
  readonly ratio: number;
  readonly file: P3FileStats;
}

const DEFAULTS = { sessions: 64, messagesPerSession: 1000, rounds: 3 } as const;

export async function runP3(options: P3Options = {}): Promise<P3Result> {
  const sessions = options.sessions ?? DEFAULTS.sessions;
  const perSession = options.messagesPerSession ?? DEFAULTS.messagesPerSession;
  const rounds = options.rounds ?? DEFAULTS.rounds;
  const parent = options.directory ?? tmpdir();
  const memoryRates: number[] = [];
  const fileRates: number[] = [];
  const totals = { records: 0, fsyncs: 0, journalSyncs: 0, checkpoints: 0, maxRecordsPerFsync: 0 };
  let offset = 0;
  for (let round = 0; round <= rounds; round++) {
    const memory = await measure(createMemoryStore(), sessions, perSession, offset);
    offset += sessions;
    const directory = await mkdtemp(join(parent, "macp-p3-"));
    try {
      const store = createFileStore({ directory });
      const file = await measure(store, sessions, perSession, offset, () => store.stats());
      offset += sessions;
      // Round 0 warms the JIT and is not counted.
      if (round === 0) continue;
      memoryRates.push(memory.messagesPerSecond);
      fileRates.push(file.messagesPerSecond);
      const { before, after } = file.stats as { before: FileStoreStats; after: FileStoreStats };
      totals.records += after.appends - before.appends;
      totals.fsyncs += after.fsyncs - before.fsyncs;
      totals.journalSyncs += after.journalSyncs - before.journalSyncs;
      totals.checkpoints += after.checkpoints - before.checkpoints;
      totals.maxRecordsPerFsync = Math.max(totals.maxRecordsPerFsync, after.maxRecordsPerFsync);
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  }
  const fileMessagesPerSecond = median(fileRates);
  const memoryMessagesPerSecond = median(memoryRates);
  return {
    sessions,
    messagesPerRun: sessions * perSession,
    rounds,
    directory: parent,
    fileMessagesPerSecond,
    memoryMessagesPerSecond,
    ratio: fileMessagesPerSecond / memoryMessagesPerSecond,
    file: {
      records: totals.records,
      fsyncs: totals.fsyncs,
      journalSyncs: totals.journalSyncs,
      checkpoints: totals.checkpoints,
      recordsPerFsync: totals.records / totals.fsyncs,
      recordsPerBatch: totals.records / totals.journalSyncs,
      maxRecordsPerFsync: totals.maxRecordsPerFsync,
    },
  };
}

interface Run {
  readonly messagesPerSecond: number;
  readonly stats: { before: unknown; after: unknown } | undefined;
}

async function measure(
  store: SessionStore,
  sessions: number,
  perSession: number,
  offset: number,
  stats?: () => unknown,
): Promise<Run> {
  const runtime = createRuntime({ clock: { now: Date.now }, store, limits: UNLIMITED });
  try {
    const ids = await openSessions(runtime, sessions, offset);
    // Built beforehand, so both runs measure the kernel and the store only.
    const traffic: Envelope[][] = ids.map((id) =>
      Array.from({ length: perSession }, (_, k) =>
        envelope(id, "Evaluation", `e${k}`, VOTER, evaluationPayload),
      ),
    );
    collectGarbage();
    const before = stats?.();
    const started = process.hrtime.bigint();
    await Promise.all(
      traffic.map(async (envelopes) => {
        for (const env of envelopes) {
          const ack = await runtime.send(env, identities.voter);
          if (ack.isErr()) throw new Error(`refused: ${ack.error.code} ${ack.error.message}`);
        }
      }),
    );
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const after = stats?.();
    return {
      messagesPerSecond: (sessions * perSession) / seconds,
      stats: stats ? { before, after } : undefined,
    };
  } finally {
    await runtime.close();
  }
}

export function collectGarbage(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

/** The lines `npm run bench` prints for P3. */
export function formatP3(p3: P3Result): string[] {
  const f = p3.file;
  return [
    `P3  durable send → Ack, ${p3.sessions} concurrent sessions (one message in flight each), ` +
      `decision mode, file store in ${p3.directory}: ${fmt(p3.fileMessagesPerSecond, 0)} msg/s ` +
      `vs memory store ${fmt(p3.memoryMessagesPerSecond, 0)} msg/s = ${fmt(p3.ratio * 100, 0)}% ` +
      `(goal ≥ 50%; median of ${p3.rounds} runs × ${p3.messagesPerRun} messages)`,
    `    ${fmt(f.recordsPerFsync, 1)} messages per fsync (goal ≥ 20): ${f.records} records, ` +
      `${f.fsyncs} fsyncs = ${f.journalSyncs} journal group commits ` +
      `(${fmt(f.recordsPerBatch, 1)} records each, at most ${f.maxRecordsPerFsync}) ` +
      `+ ${f.fsyncs - f.journalSyncs} at ${f.checkpoints} checkpoints`,
  ];
}

function fmt(n: number, digits: number): string {
  return n.toFixed(digits);
}
