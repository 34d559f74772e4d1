import {
  chmod,
  cp,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  truncate,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import {
  encodeLogRecord,
  type IncomingRecord,
  type InternalRecord,
  type LogRecord,
  type RuntimeLogger,
  type StoredSession,
} from "@macp/core";
import { EnvelopeSchema, ModeDescriptorSchema } from "@macp/proto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  createFileStore,
  type FileStore,
  FileStoreError,
  type FileStoreFileSystem,
  type FileStoreHandle,
  type FileStoreOptions,
  nodeFileSystem,
  openFileStore,
} from "./index.js";
import { JOURNAL_BODY, scanJournal } from "./journal-format.js";
import { logFileName } from "./log-file.js";

// --- fixtures ------------------------------------------------------------------

const SESSION_A = "6f1c2d3e-4a5b-4c6d-8e7f-0a1b2c3d4e5f";
const SESSION_B = "0d9e8f7a-6b5c-4d3e-9f2a-1b0c9d8e7f6a";

function incoming(sessionId: string, messageId: string, start = false): IncomingRecord {
  const envelope = create(EnvelopeSchema, {
    macpVersion: "1.0",
    mode: "macp.mode.decision.v1",
    messageType: start ? "SessionStart" : "Proposal",
    messageId,
    sessionId,
    sender: "agent://alice",
    timestampUnixMs: 1_700_000_000_000n,
    payload: new Uint8Array([1, 2, 3, messageId.length]),
  });
  if (!start) return { kind: "incoming", envelope, receivedAtMs: 1_700_000_000_123 };
  return {
    kind: "incoming",
    envelope,
    receivedAtMs: 1_700_000_000_100,
    binding: {
      modeVersion: "1.0.0",
      policy: {
        policyId: "policy.default",
        mode: "*",
        description: "default",
        rules: { voting: { algorithm: "none" } },
        schemaVersion: 1,
        registeredAtUnixMs: 0,
      },
      modeDescriptor: create(ModeDescriptorSchema, {
        mode: "macp.mode.decision.v1",
        modeVersion: "1.0.0",
        title: "Decision",
      }),
      strict: true,
      expiresAtMs: 1_700_000_060_000,
      maxSuspendMs: 604_800_000,
      semanticsRev: 1,
    },
  };
}

function internal(receivedAtMs = 1_700_000_001_000): InternalRecord {
  return { kind: "internal", type: "SessionCancel", receivedAtMs, payload: Uint8Array.of(10, 2) };
}

/** Records compare by their encoding: the codec is the store's contract. */
function bytesOf(records: readonly LogRecord[] | undefined): number[][] {
  return (records ?? []).map((record) => [...encodeLogRecord(record)]);
}

interface CapturedLogger extends RuntimeLogger {
  readonly lines: string[];
}

function capture(): CapturedLogger {
  const lines: string[] = [];
  const push = (level: string) => (message: string, fields?: Record<string, unknown>) => {
    lines.push(`${level} ${message} ${fields ? JSON.stringify(fields) : ""}`);
  };
  return { lines, info: push("info"), warn: push("warn"), error: push("error") };
}

async function collect(store: FileStore): Promise<StoredSession[]> {
  const out: StoredSession[] = [];
  for await (const session of store.loadAll()) out.push(session);
  return out;
}

function flip(bytes: Uint8Array, at: number): void {
  bytes[at] = (bytes[at] ?? 0) ^ 0x5a;
}

function systemError(code: string): Error {
  return Object.assign(new Error(`${code}: simulated`), { code });
}

/**
 * A file system whose calls fail on demand. `faults` is read at each call, so a
 * test can make the disk full, then free it again.
 */
interface Faults {
  /** Which files the write, datasync, truncate and create faults hit. Default: all. */
  scope?: "logs" | "journal";
  /** Writes fail with this code after writing `writeBudget` more bytes. */
  writeError?: string;
  writeBudget?: number;
  datasyncError?: string;
  createError?: string;
  readdirError?: string;
  readError?: string;
  truncateError?: string;
  unlinkError?: string;
}

function faultyFs(faults: Faults): FileStoreFileSystem {
  const hit = (path: string): boolean =>
    faults.scope === undefined ||
    (faults.scope === "logs" ? path.includes("/logs/") : path.endsWith("journal.log"));
  const wrap = (handle: FileStoreHandle, path: string): FileStoreHandle => ({
    async write(buffer, offset, length, position) {
      if (faults.writeError === undefined || !hit(path)) {
        return handle.write(buffer, offset, length, position);
      }
      const budget = faults.writeBudget ?? 0;
      if (budget <= 0) throw systemError(faults.writeError);
      const part = Math.min(budget, length);
      faults.writeBudget = budget - part;
      return handle.write(buffer, offset, part, position);
    },
    async datasync() {
      if (faults.datasyncError && hit(path)) throw systemError(faults.datasyncError);
      return handle.datasync();
    },
    async truncate(length) {
      if (faults.truncateError && hit(path)) throw systemError(faults.truncateError);
      return handle.truncate(length);
    },
    close: () => handle.close(),
  });
  return {
    ...nodeFileSystem,
    async readdir(path) {
      if (faults.readdirError) throw systemError(faults.readdirError);
      return nodeFileSystem.readdir(path);
    },
    async readFile(path) {
      if (faults.readError && path.includes("/logs/")) throw systemError(faults.readError);
      return nodeFileSystem.readFile(path);
    },
    async open(path, flags) {
      if (flags === "wx" && faults.createError && hit(path)) {
        throw systemError(faults.createError);
      }
      return wrap(await nodeFileSystem.open(path, flags), path);
    },
    async unlink(path) {
      if (faults.unlinkError) throw systemError(faults.unlinkError);
      return nodeFileSystem.unlink(path);
    },
  };
}

// --- harness ---------------------------------------------------------------------

let root: string;
const stores: FileStore[] = [];

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "macp-store-file-"));
});

afterEach(async () => {
  await Promise.all(stores.splice(0).map((store) => store.close().catch(() => {})));
  // Permission tests may leave directories locked; rm needs them open again.
  for (const path of [root, join(root, "data"), join(root, "data", "logs")]) {
    await chmod(path, 0o700).catch(() => {});
  }
  await rm(root, { recursive: true, force: true });
});

function open(options: FileStoreOptions = {}): FileStore {
  const store = createFileStore({ directory: join(root, "data"), logger: capture(), ...options });
  stores.push(store);
  return store;
}

async function reopen(store: FileStore, options: FileStoreOptions = {}): Promise<FileStore> {
  await store.close();
  return open(options);
}

function logPath(sessionId: string): string {
  return join(root, "data", "logs", logFileName(sessionId));
}

/**
 * What a process crash leaves: the files as they are now, with no checkpoint or
 * close to follow. A store opened on the copy sees what a restart would.
 */
async function crashCopy(): Promise<string> {
  const copy = join(root, `crashed-${Math.random().toString(36).slice(2)}`);
  await cp(join(root, "data"), copy, { recursive: true });
  return copy;
}

function openAt(directory: string, options: FileStoreOptions = {}): FileStore {
  const store = createFileStore({ directory, logger: capture(), ...options });
  stores.push(store);
  return store;
}

/** Turns the closed store in `data` into what version 1 left: its marker, its logs, no journal. */
async function markVersion1(): Promise<void> {
  await writeFile(
    join(root, "data", "macp-store.json"),
    '{"format":"macp-store-file","version":1}\n',
  );
  await rm(join(root, "data", "journal.log"), { force: true });
}

function messageIds(stored: StoredSession | undefined): string[] {
  if (!stored || !("records" in stored)) return [];
  return stored.records.map((r) => (r.kind === "incoming" ? r.envelope.messageId : r.type));
}

const isRoot = process.getuid?.() === 0;

// --- tests -------------------------------------------------------------------------

describe("file store", () => {
  it("round-trips both record kinds", async () => {
    const store = open();
    const records = [incoming(SESSION_A, "m0", true), incoming(SESSION_A, "m1"), internal()];
    for (const record of records) await store.append(SESSION_A, record);
    expect(bytesOf(await store.read(SESSION_A))).toEqual(bytesOf(records));
    expect(await store.read(SESSION_B)).toBeUndefined();
    const stats = store.stats();
    expect(stats.appends).toBe(3);
    expect(stats.fsyncs).toBe(3);
    expect(stats.directorySyncs).toBeGreaterThanOrEqual(1);
  });

  it("keeps each session's appends in call order under concurrency", async () => {
    const store = open();
    // Creates the journal, which would otherwise hold every append below in one batch.
    await store.append(SESSION_A, incoming(SESSION_A, "warm-up", true));
    const sessions = Array.from({ length: 20 }, (_, i) => `session-${String(i).padStart(20, "0")}`);
    const appends: Promise<void>[] = [];
    for (let n = 0; n < 30; n++) {
      for (const sessionId of sessions) {
        appends.push(store.append(sessionId, incoming(sessionId, `m${n}`, n === 0)));
      }
      // Interleave event-loop turns so the appends span several batches.
      if (n % 7 === 0) await new Promise((next) => setImmediate(next));
    }
    await Promise.all(appends);
    for (const sessionId of sessions) {
      const records = (await store.read(sessionId)) ?? [];
      expect(records.map((r) => (r.kind === "incoming" ? r.envelope.messageId : ""))).toEqual(
        Array.from({ length: 30 }, (_, n) => `m${n}`),
      );
    }
    expect(store.stats().batches).toBeGreaterThan(1);
  });

  it("shares fsyncs between concurrent appends (group commit)", async () => {
    const store = open();
    const sessions = Array.from({ length: 10 }, (_, i) => `group-commit-session-${i}-xxxxxx`);
    const perSession = 50;
    await Promise.all(
      sessions.flatMap((sessionId) =>
        Array.from({ length: perSession }, (_, n) =>
          store.append(sessionId, incoming(sessionId, `m${n}`, n === 0)),
        ),
      ),
    );
    const stats = store.stats();
    expect(stats.appends).toBe(sessions.length * perSession);
    // Every session's records were queued together, so each file needs one fsync.
    expect(stats.fsyncs).toBeLessThan(stats.appends / 10);
    expect(stats.recordsPerFsync).toBeGreaterThanOrEqual(10);
    expect(stats.maxRecordsPerFsync).toBeGreaterThan(1);
    console.info(
      `group commit: ${stats.appends} records, ${stats.fsyncs} fsyncs, ${stats.batches} batches, ` +
        `${stats.recordsPerFsync.toFixed(1)} records/fsync`,
    );
  });

  it("joins appends of many sessions that each wait for their previous ack into shared batches", async () => {
    const store = open();
    const sessions = Array.from({ length: 40 }, (_, i) => `sequential-session-${i}-xxxxxxx`);
    await Promise.all(
      sessions.map(async (sessionId) => {
        for (let n = 0; n < 10; n++) {
          await store.append(sessionId, incoming(sessionId, `m${n}`, n === 0));
        }
      }),
    );
    const stats = store.stats();
    // One record per session per batch, and every batch is one journal fsync.
    expect(stats.appends).toBe(400);
    expect(stats.batches).toBeLessThan(stats.appends / 10);
    expect(stats.fsyncs).toBe(stats.batches);
    console.info(
      `one-at-a-time sessions: ${stats.appends} records in ${stats.batches} batches, ` +
        `${stats.recordsPerFsync.toFixed(2)} records/fsync`,
    );
  });

  it("makes 64 sessions appending one record at a time share fsyncs, at least 20 records each", async () => {
    const store = open();
    await store.append(SESSION_A, incoming(SESSION_A, "warm-up", true));
    const before = store.stats();
    const sessions = Array.from({ length: 64 }, (_, i) => `sequential-64-session-${i}-xxxxx`);
    await Promise.all(
      sessions.map(async (sessionId) => {
        for (let n = 0; n < 30; n++) {
          await store.append(sessionId, incoming(sessionId, `m${n}`, n === 0));
        }
      }),
    );
    const stats = store.stats();
    const records = stats.appends - before.appends;
    const fsyncs = stats.fsyncs - before.fsyncs;
    expect(records).toBe(64 * 30);
    expect(records / fsyncs).toBeGreaterThanOrEqual(20);
    console.info(
      `64 one-at-a-time sessions: ${records} records, ${fsyncs} fsyncs, ` +
        `${(records / fsyncs).toFixed(1)} records/fsync, at most ${stats.maxRecordsPerFsync} in one`,
    );
    // The checkpoint at close costs one fsync per log, once.
    await store.close();
    const closed = store.stats();
    expect(closed.logSyncs).toBe(65);
    expect(closed.recordsPerFsync).toBeGreaterThanOrEqual(10);
  });

  it("recovers the same records after a restart", async () => {
    let store = open();
    await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
    await store.append(SESSION_B, incoming(SESSION_B, "b0", true));
    await store.append(SESSION_A, internal());
    store = await reopen(store);
    const loaded = await collect(store);
    expect(loaded.map((s) => s.sessionId).sort()).toEqual([SESSION_A, SESSION_B].sort());
    const a = loaded.find((s) => s.sessionId === SESSION_A);
    expect(a && "records" in a ? bytesOf(a.records) : []).toEqual(
      bytesOf([incoming(SESSION_A, "a0", true), internal()]),
    );
    // Appends continue after the recovered records.
    await store.append(SESSION_A, incoming(SESSION_A, "a2"));
    expect((await store.read(SESSION_A))?.length).toBe(3);
  });

  it("repairs a log torn by a crash from the journal, which still holds the torn record", async () => {
    const store = open();
    await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
    await store.append(SESSION_A, incoming(SESSION_A, "a1"));
    await store.checkpoint();
    const intact = await readFile(logPath(SESSION_A));
    await store.append(SESSION_A, incoming(SESSION_A, "a2"));
    await store.append(SESSION_B, incoming(SESSION_B, "b0", true));
    // The crash came while a checkpoint was writing a2 and b0: a2's frame is cut
    // short, b0's new log holds nothing yet, and the journal still holds both.
    const copy = await crashCopy();
    const copiedLog = join(copy, "logs", logFileName(SESSION_A));
    await writeFile(copiedLog, Buffer.concat([intact, Buffer.from([9, 0, 0, 0, 1, 2, 3])]));
    await writeFile(join(copy, "logs", logFileName(SESSION_B)), new Uint8Array(0));
    const logger = capture();
    const restarted = openAt(copy, { logger });
    const loaded = await collect(restarted);
    expect(loaded.map(messageIds)).toEqual([["b0"], ["a0", "a1", "a2"]]);
    expect(logger.lines.filter((line) => line.startsWith("error"))).toEqual([]);
    await restarted.append(SESSION_A, incoming(SESSION_A, "a3"));
    expect(
      messageIds({ sessionId: SESSION_A, records: [...((await restarted.read(SESSION_A)) ?? [])] }),
    ).toEqual(["a0", "a1", "a2", "a3"]);
  });

  it("quarantines a session whose acknowledged last record was torn after a clean shutdown", async () => {
    let store = open();
    await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
    await store.append(SESSION_A, incoming(SESSION_A, "a1"));
    await store.checkpoint();
    const intact = (await stat(logPath(SESSION_A))).size;
    await store.append(SESSION_A, incoming(SESSION_A, "a2"));
    await store.append(SESSION_B, incoming(SESSION_B, "b0", true));
    // close() checkpoints, so the journal no longer holds a2: the log is its only copy.
    await store.close();
    await truncate(logPath(SESSION_A), intact + 11);
    const torn = await readFile(logPath(SESSION_A));
    const logger = capture();
    store = open({ logger });
    const loaded = await collect(store);
    const a = loaded.find((session) => session.sessionId === SESSION_A);
    expect(a && "error" in a ? a.error : "").toMatch(
      /last record, at byte \d+, is cut off .* every record of this log was acknowledged/,
    );
    expect(messageIds(loaded.find((session) => session.sessionId === SESSION_B))).toEqual(["b0"]);
    expect(
      logger.lines.some((line) => line.startsWith(`error session ${SESSION_A} quarantined`)),
    ).toBe(true);
    expect(logger.lines.some((line) => line.includes("torn tail"))).toBe(false);
    // Left exactly as found, for an operator.
    expect(await readFile(logPath(SESSION_A))).toEqual(torn);
    await expect(store.append(SESSION_A, incoming(SESSION_A, "a2-retry"))).rejects.toMatchObject({
      code: "SESSION_QUARANTINED",
    });
  });

  it("quarantines a session whose checkpointed log gained a zero-filled tail", async () => {
    let store = open();
    await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
    await store.close();
    const bytes = await readFile(logPath(SESSION_A));
    await writeFile(logPath(SESSION_A), Buffer.concat([bytes, new Uint8Array(4096)]));
    store = open();
    const [loaded] = await collect(store);
    expect(loaded && "error" in loaded ? loaded.error : "").toMatch(/cut off or damaged/);
    expect((await stat(logPath(SESSION_A))).size).toBe(bytes.length + 4096);
  });

  it("cuts off a torn or zero-filled tail in a version 1 store, which wrote logs without a journal", async () => {
    let store = open();
    await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
    await store.append(SESSION_A, incoming(SESSION_A, "a1"));
    await store.checkpoint();
    const intact = (await stat(logPath(SESSION_A))).size;
    await store.append(SESSION_A, incoming(SESSION_A, "a2"));
    await store.append(SESSION_B, incoming(SESSION_B, "b0", true));
    await store.close();
    await markVersion1();
    await truncate(logPath(SESSION_A), intact + 11);
    const bBytes = await readFile(logPath(SESSION_B));
    await writeFile(logPath(SESSION_B), Buffer.concat([bBytes, new Uint8Array(4096)]));
    const logger = capture();
    store = open({ logger });
    const loaded = await collect(store);
    expect(loaded.map(messageIds)).toEqual([["b0"], ["a0", "a1"]]);
    expect((await stat(logPath(SESSION_A))).size).toBe(intact);
    expect((await stat(logPath(SESSION_B))).size).toBe(bBytes.length);
    expect(logger.lines.some((line) => line.includes(`torn tail of session ${SESSION_A}`))).toBe(
      true,
    );
    await store.append(SESSION_A, incoming(SESSION_A, "a2-retry"));
    store = await reopen(store);
    expect((await collect(store)).map(messageIds)).toEqual([["b0"], ["a0", "a1", "a2-retry"]]);
  });

  it("quarantines a session whose log is damaged in the middle and recovers the others", async () => {
    let store = open();
    await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
    await store.append(SESSION_A, incoming(SESSION_A, "a1"));
    await store.append(SESSION_A, incoming(SESSION_A, "a2"));
    await store.append(SESSION_B, incoming(SESSION_B, "b0", true));
    await store.close();
    const bytes = await readFile(logPath(SESSION_A));
    flip(bytes, Math.floor(bytes.length / 2));
    await writeFile(logPath(SESSION_A), bytes);
    const logger = capture();
    store = open({ logger });
    const loaded = await collect(store);
    const a = loaded.find((s) => s.sessionId === SESSION_A);
    const b = loaded.find((s) => s.sessionId === SESSION_B);
    expect(a && "error" in a ? a.error : "").toMatch(/damaged record at byte \d+/);
    expect(b && "records" in b ? b.records.length : -1).toBe(1);
    expect(logger.lines.some((l) => l.startsWith(`error session ${SESSION_A} quarantined`))).toBe(
      true,
    );
    // The damaged file is left exactly as found, and is not written to.
    expect(await readFile(logPath(SESSION_A))).toEqual(bytes);
    await expect(store.append(SESSION_A, incoming(SESSION_A, "a3"))).rejects.toMatchObject({
      code: "SESSION_QUARANTINED",
    });
    await expect(store.read(SESSION_A)).rejects.toBeInstanceOf(FileStoreError);
    await store.append(SESSION_B, incoming(SESSION_B, "b1"));
  });

  it("quarantines a log whose header is damaged", async () => {
    let store = open();
    await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
    await store.close();
    const bytes = await readFile(logPath(SESSION_A));
    flip(bytes, 12); // the id length
    await writeFile(logPath(SESSION_A), bytes);
    store = open();
    const [loaded] = await collect(store);
    expect(loaded).toMatchObject({ sessionId: SESSION_A });
    expect(loaded && "error" in loaded).toBe(true);
  });

  it("quarantines a session whose log became zero-length, rather than letting it vanish", async () => {
    let store = open();
    await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
    await store.append(SESSION_B, incoming(SESSION_B, "b0", true));
    await store.close();
    await writeFile(logPath(SESSION_A), new Uint8Array(0));
    await writeFile(logPath(SESSION_B), (await readFile(logPath(SESSION_B))).subarray(0, 30));
    const logger = capture();
    store = open({ logger });
    const loaded = await collect(store);
    expect(loaded.map((session) => session.sessionId).sort()).toEqual(
      [SESSION_A, SESSION_B].sort(),
    );
    for (const session of loaded) {
      expect("error" in session ? session.error : "").toMatch(/holds no complete record/);
    }
    // Left in place, and the ids stay taken.
    expect((await stat(logPath(SESSION_A))).size).toBe(0);
    await expect(store.append(SESSION_A, incoming(SESSION_A, "a1"))).rejects.toMatchObject({
      code: "SESSION_QUARANTINED",
    });
  });

  it("quarantines a zero-length log it finds on its first append without a prior loadAll", async () => {
    let store = open();
    await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
    await store.close();
    await writeFile(logPath(SESSION_A), new Uint8Array(0));
    store = open();
    await expect(store.append(SESSION_A, incoming(SESSION_A, "a1"))).rejects.toMatchObject({
      code: "SESSION_QUARANTINED",
    });
    await expect(store.read(SESSION_A)).rejects.toMatchObject({ code: "SESSION_QUARANTINED" });
  });

  it("removes the log of a deleted session even when it is empty", async () => {
    let store = open();
    await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
    await store.delete(SESSION_A);
    await store.close();
    // The delete's unlink was lost, and the file with it emptied.
    await writeFile(logPath(SESSION_A), new Uint8Array(0));
    store = open();
    expect(await collect(store)).toEqual([{ sessionId: SESSION_A, records: [] }]);
    expect(await readdir(join(root, "data", "logs"))).toEqual([]);
  });

  it("removes an empty or half-created log in a version 1 store: nothing in it was acknowledged", async () => {
    let store = open();
    await store.ready();
    await store.close();
    await markVersion1();
    await writeFile(logPath(SESSION_A), new Uint8Array(0));
    await writeFile(logPath(SESSION_B), Buffer.from("MACPSL"));
    const logger = capture();
    store = open({ logger });
    expect(await collect(store)).toEqual([]);
    expect(await readdir(join(root, "data", "logs"))).toEqual([]);
    expect(logger.lines.filter((l) => l.includes("no complete record"))).toHaveLength(2);
    // The id was never acknowledged, so it is free.
    await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
    expect((await store.read(SESSION_A))?.length).toBe(1);
  });

  it("handles an empty log of a version 1 store on its first append without a prior loadAll", async () => {
    let store = open();
    await store.ready();
    await store.close();
    await markVersion1();
    await writeFile(logPath(SESSION_A), new Uint8Array(0));
    store = open();
    await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
    store = await reopen(store);
    const [loaded] = await collect(store);
    expect(loaded && "records" in loaded ? loaded.records.length : -1).toBe(1);
  });

  it("creates a missing directory with its parents", async () => {
    const directory = join(root, "deep", "er", "data");
    const store = createFileStore({ directory, logger: capture() });
    stores.push(store);
    expect(await collect(store)).toEqual([]);
    expect((await stat(join(directory, "logs"))).isDirectory()).toBe(true);
    expect(JSON.parse(await readFile(join(directory, "macp-store.json"), "utf8"))).toEqual({
      format: "macp-store-file",
      version: 2,
    });
  });

  it("refuses a directory it cannot list instead of starting empty", async () => {
    let store = open();
    await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
    await store.close();
    store = open({ fileSystem: faultyFs({ readdirError: "EACCES" }) });
    await expect(store.ready()).rejects.toMatchObject({ code: "UNUSABLE_DIRECTORY" });
    await expect(collect(store)).rejects.toThrow(/cannot read directory .*EACCES/);
  });

  it.skipIf(isRoot)("refuses an unreadable directory (real permissions)", async () => {
    let store = open();
    await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
    await store.close();
    await chmod(join(root, "data"), 0o000);
    store = open();
    await expect(collect(store)).rejects.toMatchObject({ code: "UNUSABLE_DIRECTORY" });
  });

  it("refuses a non-empty directory that is not a store, and the reference runtime's layout", async () => {
    await mkdir(join(root, "data", "sessions", "abc"), { recursive: true });
    await writeFile(join(root, "data", "storage_version.json"), '{"version": 3}');
    const store = open();
    await expect(store.ready()).rejects.toThrow(/reference runtime's file layout/);
    const other = join(root, "other");
    await mkdir(other);
    await writeFile(join(other, "notes.txt"), "mine");
    const foreign = createFileStore({ directory: other, logger: capture() });
    await expect(foreign.ready()).rejects.toThrow(/not a macp-store-file directory/);
  });

  it("refuses a store whose logs directory has gone", async () => {
    let store = open();
    await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
    await store.close();
    await rm(join(root, "data", "logs"), { recursive: true });
    store = open();
    await expect(collect(store)).rejects.toThrow(/logs\/ directory is missing/);
  });

  it("refuses a second store on a directory open in this process", async () => {
    const first = open();
    await first.ready();
    const second = createFileStore({ directory: join(root, "data"), logger: capture() });
    await expect(second.ready()).rejects.toThrow(/already open/);
    await first.close();
    const third = open();
    await third.ready();
  });

  it.skipIf(isRoot)(
    "refuses appends but keeps reads in a read-only directory (real permissions)",
    async () => {
      let store = open();
      await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
      await store.close();
      await chmod(logPath(SESSION_A), 0o400);
      await chmod(join(root, "data", "journal.log"), 0o400);
      await chmod(join(root, "data", "logs"), 0o500);
      await chmod(join(root, "data"), 0o500);
      store = open();
      expect(await collect(store)).toHaveLength(1);
      await expect(store.append(SESSION_B, incoming(SESSION_B, "b0", true))).rejects.toMatchObject({
        code: "IO_FAILED",
        message: expect.stringMatching(/EACCES/),
      });
      await expect(store.append(SESSION_A, incoming(SESSION_A, "a1"))).rejects.toMatchObject({
        code: "IO_FAILED",
      });
      expect((await store.read(SESSION_A))?.length).toBe(1);
    },
  );

  it("refuses appends but keeps reads on a read-only file system (simulated)", async () => {
    let store = open();
    await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
    await store.checkpoint();
    const before = await readFile(logPath(SESSION_A));
    const faults: Faults = { createError: "EROFS", writeError: "EROFS", truncateError: "EROFS" };
    store = await reopen(store, { fileSystem: faultyFs(faults) });
    expect(await collect(store)).toHaveLength(1);
    await expect(store.append(SESSION_B, incoming(SESSION_B, "b0", true))).rejects.toMatchObject({
      code: "IO_FAILED",
      message: expect.stringMatching(/EROFS/),
    });
    await expect(store.append(SESSION_A, incoming(SESSION_A, "a1"))).rejects.toMatchObject({
      code: "IO_FAILED",
    });
    expect(bytesOf(await store.read(SESSION_A))).toEqual(
      bytesOf([incoming(SESSION_A, "a0", true)]),
    );
    expect(await readFile(logPath(SESSION_A))).toEqual(before);
    expect(store.stats().failedAppends).toBe(2);
  });

  it("leaves no trace of a record whose write failed half-way (disk full)", async () => {
    const faults: Faults = {};
    let store = open({ fileSystem: faultyFs(faults) });
    await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
    await store.checkpoint();
    const good = (await stat(logPath(SESSION_A))).size;
    faults.writeError = "ENOSPC";
    faults.writeBudget = 17; // part of the next batch reaches the journal
    const refused = store.append(SESSION_A, incoming(SESSION_A, "a1"));
    await expect(refused).rejects.toMatchObject({ code: "IO_FAILED" });
    await expect(refused).rejects.toThrow(/ENOSPC/);
    expect((await stat(logPath(SESSION_A))).size).toBe(good);
    // A new session cannot even get its header down.
    faults.writeBudget = 5;
    await expect(store.append(SESSION_B, incoming(SESSION_B, "b0", true))).rejects.toThrow(
      /ENOSPC/,
    );
    await expect(stat(logPath(SESSION_B))).rejects.toMatchObject({ code: "ENOENT" });
    expect((await store.read(SESSION_A))?.length).toBe(1);
    // Space is freed: the same records go through.
    faults.writeError = undefined;
    await store.append(SESSION_A, incoming(SESSION_A, "a1"));
    await store.append(SESSION_B, incoming(SESSION_B, "b0", true));
    store = await reopen(store);
    const loaded = await collect(store);
    const a = loaded.find((s) => s.sessionId === SESSION_A);
    expect(a && "records" in a ? bytesOf(a.records) : []).toEqual(
      bytesOf([incoming(SESSION_A, "a0", true), incoming(SESSION_A, "a1")]),
    );
  });

  it("erases a batch whose journal fsync failed, even when erasing it fails too", async () => {
    const faults: Faults = {};
    let store = open({ fileSystem: faultyFs(faults) });
    await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
    // The fsync fails, and so does the one after zeroing the batch's magic: the
    // refused batch may still be on disk. The next batch is written in its place.
    faults.datasyncError = "EIO";
    await expect(store.append(SESSION_A, incoming(SESSION_A, "a1"))).rejects.toThrow(/EIO/);
    await expect(store.append(SESSION_B, incoming(SESSION_B, "b0", true))).rejects.toThrow(/EIO/);
    faults.datasyncError = undefined;
    await store.append(SESSION_A, incoming(SESSION_A, "a1-retry"));
    expect(
      messageIds({ sessionId: SESSION_A, records: (await store.read(SESSION_A)) ?? [] }),
    ).toEqual(["a0", "a1-retry"]);
    // After a crash (the journal is replayed) and after a clean restart alike.
    const crashed = openAt(await crashCopy());
    expect((await collect(crashed)).map(messageIds)).toEqual([["a0", "a1-retry"]]);
    store = await reopen(store);
    expect((await collect(store)).map(messageIds)).toEqual([["a0", "a1-retry"]]);
  });

  it("refuses the whole batch when the journal write fails, and keeps none of it", async () => {
    const faults: Faults = { scope: "journal" };
    let store = open({ fileSystem: faultyFs(faults) });
    await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
    faults.writeError = "ENOSPC";
    faults.writeBudget = 40;
    const results = await Promise.allSettled([
      store.append(SESSION_A, incoming(SESSION_A, "a1")),
      store.append(SESSION_B, incoming(SESSION_B, "b0", true)),
    ]);
    expect(results.map((r) => r.status)).toEqual(["rejected", "rejected"]);
    expect(store.stats().failedAppends).toBe(2);
    faults.writeError = undefined;
    await store.append(SESSION_B, incoming(SESSION_B, "b0-retry", true));
    const crashed = openAt(await crashCopy());
    expect((await collect(crashed)).map(messageIds).sort()).toEqual([["a0"], ["b0-retry"]]);
    store = await reopen(store);
    expect((await collect(store)).map(messageIds).sort()).toEqual([["a0"], ["b0-retry"]]);
  });

  it("keeps records in the journal while a checkpoint cannot write their log (disk full)", async () => {
    const faults: Faults = { scope: "logs" };
    let store = open({ fileSystem: faultyFs(faults) });
    await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
    await store.checkpoint();
    const good = await readFile(logPath(SESSION_A));
    await store.append(SESSION_A, incoming(SESSION_A, "a1"));
    await store.append(SESSION_B, incoming(SESSION_B, "b0", true));
    faults.writeError = "ENOSPC";
    faults.writeBudget = 30; // part of a log write reaches the disk
    await expect(store.checkpoint()).rejects.toThrow(/ENOSPC/);
    // The logs are as they were (the half-written one cut back, the new one removed)...
    expect(await readFile(logPath(SESSION_A))).toEqual(good);
    await expect(stat(logPath(SESSION_B))).rejects.toMatchObject({ code: "ENOENT" });
    // ...and the records are still durable, in the journal, and readable.
    expect(
      messageIds({ sessionId: SESSION_A, records: (await store.read(SESSION_A)) ?? [] }),
    ).toEqual(["a0", "a1"]);
    expect(store.stats().journalRecords).toBe(2);
    const crashed = openAt(await crashCopy());
    expect((await collect(crashed)).map(messageIds).sort()).toEqual([["a0", "a1"], ["b0"]]);
    // Appends go on meanwhile; once there is space, a checkpoint writes it all.
    await store.append(SESSION_A, incoming(SESSION_A, "a2"));
    faults.writeError = undefined;
    await store.checkpoint();
    expect(store.stats().journalRecords).toBe(0);
    store = await reopen(store);
    expect((await collect(store)).map(messageIds).sort()).toEqual([["a0", "a1", "a2"], ["b0"]]);
  });

  it("cuts a failed log write back, and repairs before the next write if that fails too", async () => {
    const faults: Faults = { scope: "logs" };
    let store = open({ fileSystem: faultyFs(faults) });
    await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
    await store.checkpoint();
    const good = (await stat(logPath(SESSION_A))).size;
    await store.append(SESSION_A, incoming(SESSION_A, "a1"));
    // The log's fsync fails and so does the truncate that would undo the write.
    faults.datasyncError = "EIO";
    faults.truncateError = "EIO";
    await expect(store.checkpoint()).rejects.toThrow(/EIO/);
    expect((await stat(logPath(SESSION_A))).size).toBeGreaterThan(good);
    faults.datasyncError = undefined;
    await expect(store.checkpoint()).rejects.toThrow(/EIO/);
    faults.truncateError = undefined;
    await store.checkpoint();
    store = await reopen(store);
    expect((await collect(store)).map(messageIds)).toEqual([["a0", "a1"]]);
  });

  it("overwrites a new log whose creation failed and could not be removed", async () => {
    const faults: Faults = { scope: "logs" };
    let store = open({ fileSystem: faultyFs(faults) });
    await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
    faults.datasyncError = "EIO";
    faults.unlinkError = "EIO";
    await expect(store.checkpoint()).rejects.toThrow(/EIO/);
    // The file is there, but it is not what the store reads: the journal is.
    expect((await stat(logPath(SESSION_A))).size).toBeGreaterThan(0);
    expect((await store.read(SESSION_A))?.length).toBe(1);
    faults.datasyncError = undefined;
    faults.unlinkError = undefined;
    await store.append(SESSION_A, incoming(SESSION_A, "a1"));
    store = await reopen(store);
    expect((await collect(store)).map(messageIds)).toEqual([["a0", "a1"]]);
  });

  it("refuses only the deleted or quarantined session's appends among concurrent ones", async () => {
    let store = open();
    await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
    await store.append(SESSION_B, incoming(SESSION_B, "b0", true));
    await store.delete(SESSION_B);
    store = await reopen(store);
    const damaged = "damaged-session-xxxxxxxxxxxxxxxx";
    await writeFile(logPath(damaged), Buffer.from("MACPSLOG-not-a-header"));
    const results = await Promise.allSettled([
      store.append(SESSION_A, incoming(SESSION_A, "a1")),
      store.append(SESSION_B, incoming(SESSION_B, "b1")),
      store.append(damaged, incoming(damaged, "d0", true)),
    ]);
    expect(results.map((r) => (r.status === "rejected" ? r.reason.code : r.status))).toEqual([
      "fulfilled",
      "SESSION_DELETED",
      "SESSION_QUARANTINED",
    ]);
  });

  it("rejects appends after close, and flushes those made before", async () => {
    const store = open();
    const pending = [
      store.append(SESSION_A, incoming(SESSION_A, "a0", true)),
      store.append(SESSION_A, incoming(SESSION_A, "a1")),
    ];
    await store.close();
    await Promise.all(pending);
    await expect(store.append(SESSION_A, incoming(SESSION_A, "a2"))).rejects.toMatchObject({
      code: "CLOSED",
    });
    await expect(store.read(SESSION_A)).rejects.toMatchObject({ code: "CLOSED" });
    const again = open();
    const [loaded] = await collect(again);
    expect(loaded && "records" in loaded ? loaded.records.length : -1).toBe(2);
  });

  it("deletes a session durably and keeps its id reserved across restarts", async () => {
    let store = open({ deleteTerminalAfterMs: 3_600_000 });
    expect(store.deleteTerminalAfterMs).toBe(3_600_000);
    await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
    await store.append(SESSION_B, incoming(SESSION_B, "b0", true));
    await store.delete(SESSION_A);
    await store.delete(SESSION_A); // idempotent
    expect(await store.read(SESSION_A)).toBeUndefined();
    await expect(stat(logPath(SESSION_A))).rejects.toMatchObject({ code: "ENOENT" });
    await expect(store.append(SESSION_A, incoming(SESSION_A, "again", true))).rejects.toMatchObject(
      { code: "SESSION_DELETED" },
    );
    store = await reopen(store);
    expect(await collect(store)).toEqual([
      { sessionId: SESSION_B, records: [expect.anything()] },
      { sessionId: SESSION_A, records: [] },
    ]);
    expect(await store.tombstones()).toEqual([SESSION_A]);
    expect(await store.isDeleted(SESSION_A)).toBe(true);
    expect(await store.isDeleted(SESSION_B)).toBe(false);
    await expect(store.append(SESSION_A, incoming(SESSION_A, "again", true))).rejects.toMatchObject(
      { code: "SESSION_DELETED" },
    );
    await store.delete(SESSION_B);
    store = await reopen(store);
    expect(await store.tombstones()).toEqual([SESSION_A, SESSION_B]);
  });

  it("cuts a torn tombstone list and refuses one damaged in the middle", async () => {
    let store = open();
    const ids = [SESSION_A, SESSION_B, "third-session-id-xxxxxxxx"];
    for (const id of ids) await store.delete(id);
    await store.close();
    const path = join(root, "data", "tombstones.log");
    const bytes = await readFile(path);
    await writeFile(path, bytes.subarray(0, bytes.length - 3));
    store = open();
    expect(await store.tombstones()).toEqual(ids.slice(0, 2));
    await store.close();
    const damaged = await readFile(path);
    flip(damaged, 30); // inside the first of the two tombstones
    await writeFile(path, damaged);
    store = open();
    await expect(store.ready()).rejects.toThrow(/tombstone list .* is damaged/);
  });

  it("finishes a deletion that crashed after its tombstone was written", async () => {
    let store = open();
    await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
    await store.close();
    const saved = await readFile(logPath(SESSION_A));
    store = open();
    await store.delete(SESSION_A);
    await store.close();
    await writeFile(logPath(SESSION_A), saved); // as if the unlink never happened
    store = open();
    expect(await collect(store)).toEqual([{ sessionId: SESSION_A, records: [] }]);
    await expect(stat(logPath(SESSION_A))).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("names files safely whatever the session id", async () => {
    let store = open();
    const ids = ["../../escape", "a/b\\c", "ümlaut-Ωmega", "x".repeat(400), "CaseSensitive"];
    ids.push("casesensitive");
    for (const id of ids) await store.append(id, incoming(id, "m0", true));
    await store.checkpoint();
    const names = await readdir(join(root, "data", "logs"));
    expect(names).toHaveLength(ids.length);
    for (const name of names) expect(name).toMatch(/^(?:[0-9a-f]+|h-[0-9a-f]{64})\.log$/);
    store = await reopen(store);
    expect((await collect(store)).map((s) => s.sessionId).sort()).toEqual([...ids].sort());
    for (const id of ids) expect((await store.read(id))?.length).toBe(1);
  });

  it("caps open files and closes the least recently used", async () => {
    let open = 0;
    let mostOpen = 0;
    const counting: FileStoreFileSystem = {
      ...nodeFileSystem,
      async open(path, flags) {
        const handle = await nodeFileSystem.open(path, flags);
        mostOpen = Math.max(mostOpen, ++open);
        return {
          write: (...args) => handle.write(...args),
          datasync: () => handle.datasync(),
          truncate: (length) => handle.truncate(length),
          close: async () => {
            open--;
            await handle.close();
          },
        };
      },
    };
    const store = createFileStore({
      directory: join(root, "data"),
      logger: capture(),
      maxOpenFiles: 4,
      fileSystem: counting,
    });
    stores.push(store);
    const sessions = Array.from({ length: 20 }, (_, i) => `lru-session-${i}-xxxxxxxxxxxx`);
    for (let n = 0; n < 3; n++) {
      await Promise.all(sessions.map((id) => store.append(id, incoming(id, `m${n}`, n === 0))));
      await store.checkpoint();
      expect(store.stats().openFiles).toBeLessThanOrEqual(4);
    }
    // Never more logs than the cap at once; the journal's handle comes on top.
    expect(mostOpen).toBeLessThanOrEqual(4 + 1);
    for (const id of sessions) expect((await store.read(id))?.length).toBe(3);
    await store.close();
    expect(open).toBe(0);
  });

  it("reads the durable prefix of a version 1 log it did not load", async () => {
    let store = open();
    await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
    await store.append(SESSION_A, incoming(SESSION_A, "a1"));
    await store.close();
    await markVersion1();
    const bytes = await readFile(logPath(SESSION_A));
    await writeFile(logPath(SESSION_A), bytes.subarray(0, bytes.length - 3));
    store = open();
    expect((await store.read(SESSION_A))?.length).toBe(1);
  });

  it("refuses to read a checkpointed log it did not load whose last record was torn", async () => {
    let store = open();
    await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
    await store.append(SESSION_A, incoming(SESSION_A, "a1"));
    await store.close();
    const bytes = await readFile(logPath(SESSION_A));
    await writeFile(logPath(SESSION_A), bytes.subarray(0, bytes.length - 3));
    store = open();
    await expect(store.read(SESSION_A)).rejects.toMatchObject({ code: "SESSION_QUARANTINED" });
  });

  it("quarantines a log it cannot read rather than skipping it", async () => {
    let store = open();
    await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
    store = await reopen(store, { fileSystem: faultyFs({ readError: "EIO" }) });
    const [loaded] = await collect(store);
    expect(loaded).toMatchObject({ sessionId: SESSION_A, error: expect.stringMatching(/EIO/) });
  });

  it("validates its options", () => {
    expect(() => createFileStore({ maxOpenFiles: 0 })).toThrow(RangeError);
    expect(() => createFileStore({ deleteTerminalAfterMs: -1 })).toThrow(RangeError);
  });

  it("is usable through openFileStore", async () => {
    const directory = join(root, "opened");
    const store = await openFileStore({ directory, logger: capture() });
    stores.push(store);
    expect(store.directory).toBe(directory);
  });
});

describe("journal and checkpoints", () => {
  it("replays the journal after a crash into the logs, and then starts it over", async () => {
    const store = open();
    await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
    await store.append(SESSION_A, incoming(SESSION_A, "a1"));
    await store.checkpoint();
    await store.append(SESSION_A, incoming(SESSION_A, "a2"));
    await store.append(SESSION_B, incoming(SESSION_B, "b0", true));
    expect(store.stats().journalRecords).toBe(2);
    const crashed = await crashCopy();
    const logger = capture();
    let restarted = openAt(crashed, { logger });
    await restarted.ready();
    expect(logger.lines.some((line) => line.includes("replaying the journal"))).toBe(true);
    // Replay wrote the logs and made them durable: nothing is left to the journal.
    expect(restarted.stats()).toMatchObject({ journalRecords: 0, checkpoints: 1, logSyncs: 2 });
    expect((await collect(restarted)).map(messageIds).sort()).toEqual([["a0", "a1", "a2"], ["b0"]]);
    await restarted.close();
    const quiet = capture();
    restarted = openAt(crashed, { logger: quiet });
    expect((await collect(restarted)).map(messageIds).sort()).toEqual([["a0", "a1", "a2"], ["b0"]]);
    expect(quiet.lines).toEqual([]);
  });

  it("replays a journal whose records are already in the logs without copying them twice", async () => {
    const faults: Faults = { scope: "journal" };
    const store = open({ fileSystem: faultyFs(faults) });
    await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
    await store.append(SESSION_A, incoming(SESSION_A, "a1"));
    await store.append(SESSION_B, incoming(SESSION_B, "b0", true));
    // The checkpoint writes both logs, then cannot start a new journal generation.
    faults.writeError = "EIO";
    await expect(store.checkpoint()).rejects.toThrow(/EIO/);
    expect((await stat(logPath(SESSION_A))).size).toBeGreaterThan(0);
    // No batch goes to the journal until a generation starts.
    await expect(store.append(SESSION_A, incoming(SESSION_A, "a2"))).rejects.toThrow(/EIO/);
    const crashed = openAt(await crashCopy());
    expect((await collect(crashed)).map(messageIds).sort()).toEqual([["a0", "a1"], ["b0"]]);
    faults.writeError = undefined;
    await store.append(SESSION_A, incoming(SESSION_A, "a2"));
    const again = openAt(await crashCopy());
    expect((await collect(again)).map(messageIds).sort()).toEqual([["a0", "a1", "a2"], ["b0"]]);
  });

  it("cuts a torn batch off the end of the journal", async () => {
    const store = open();
    for (const id of ["a0", "a1", "a2"]) {
      await store.append(SESSION_A, incoming(SESSION_A, id, id === "a0"));
    }
    const crashed = await crashCopy();
    const journal = join(crashed, "journal.log");
    const bytes = await readFile(journal);
    const scan = scanJournal(bytes);
    if (scan.status !== "ok") throw new Error(scan.status);
    bytes.fill(0, scan.end - 5, scan.end); // the last batch never fully reached the disk
    await writeFile(journal, bytes);
    const logger = capture();
    const restarted = openAt(crashed, { logger });
    expect((await collect(restarted)).map(messageIds)).toEqual([["a0", "a1"]]);
    expect(logger.lines.filter((line) => line.startsWith("error"))).toEqual([]);
    await restarted.append(SESSION_A, incoming(SESSION_A, "a2-retry"));
    expect((await restarted.read(SESSION_A))?.length).toBe(3);
  });

  it("refuses to start on a journal damaged before batches that were acknowledged", async () => {
    const store = open();
    for (const id of ["a0", "a1", "a2"]) {
      await store.append(SESSION_A, incoming(SESSION_A, id, id === "a0"));
    }
    const crashed = await crashCopy();
    const journal = join(crashed, "journal.log");
    const bytes = await readFile(journal);
    flip(bytes, JOURNAL_BODY + 40); // inside the first batch
    await writeFile(journal, bytes);
    const restarted = openAt(crashed);
    await expect(restarted.ready()).rejects.toMatchObject({
      code: "UNUSABLE_DIRECTORY",
      message: expect.stringMatching(/journal .* is damaged .* acknowledged/),
    });
  });

  it("quarantines a session whose log lost checkpointed records, and keeps its journal records aside", async () => {
    const store = open();
    await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
    await store.append(SESSION_A, incoming(SESSION_A, "a1"));
    await store.append(SESSION_B, incoming(SESSION_B, "b0", true));
    await store.checkpoint();
    const withOne = (await readFile(logPath(SESSION_A))).length;
    await store.append(SESSION_A, incoming(SESSION_A, "a2"));
    await store.append(SESSION_B, incoming(SESSION_B, "b1"));
    const crashed = await crashCopy();
    const log = join(crashed, "logs", logFileName(SESSION_A));
    const full = await readFile(log);
    // Cut a1 away: a0 stays valid, but the journal continues the log after a1.
    const a0Only = await (async () => {
      const probe = openAt(join(root, "probe"));
      await probe.append(SESSION_A, incoming(SESSION_A, "a0", true));
      await probe.close();
      return (await readFile(join(root, "probe", "logs", logFileName(SESSION_A)))).length;
    })();
    expect(a0Only).toBeLessThan(withOne);
    await writeFile(log, full.subarray(0, a0Only));
    const logger = capture();
    const restarted = openAt(crashed, { logger });
    const loaded = await collect(restarted);
    const a = loaded.find((stored) => stored.sessionId === SESSION_A);
    expect(a && "error" in a ? a.error : "").toMatch(/acknowledged records are missing/);
    expect(messageIds(loaded.find((stored) => stored.sessionId === SESSION_B))).toEqual([
      "b0",
      "b1",
    ]);
    expect(await readFile(log)).toEqual(full.subarray(0, a0Only));
    const aside = await readdir(join(crashed, "quarantine"));
    expect(aside).toEqual([`${logFileName(SESSION_A)}.from-${withOne}`]);
    expect(logger.lines.some((line) => line.includes("kept the journal's records"))).toBe(true);
    await expect(restarted.append(SESSION_A, incoming(SESSION_A, "a3"))).rejects.toMatchObject({
      code: "SESSION_QUARANTINED",
    });
  });

  it("checkpoints by itself whenever the journal fills", async () => {
    let store = open({ journalBytes: 4096 });
    for (let n = 0; n < 100; n++) {
      await store.append(SESSION_A, incoming(SESSION_A, `a${n}`, n === 0));
    }
    const stats = store.stats();
    expect(stats.checkpoints).toBeGreaterThanOrEqual(3);
    expect(stats.journalRecords).toBeLessThan(100);
    expect((await stat(logPath(SESSION_A))).size).toBeGreaterThan(0);
    const crashed = openAt(await crashCopy());
    expect((await collect(crashed)).map((s) => messageIds(s).length)).toEqual([100]);
    store = await reopen(store);
    expect((await collect(store)).map((s) => messageIds(s).length)).toEqual([100]);
  });

  it("reads a version 1 store and upgrades it when it creates the journal", async () => {
    let store = open();
    await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
    await store.close();
    // What version 1 left: the marker, the logs, no journal.
    const marker = join(root, "data", "macp-store.json");
    await writeFile(marker, '{"format":"macp-store-file","version":1}\n');
    await rm(join(root, "data", "journal.log"));
    store = open();
    expect((await collect(store)).map(messageIds)).toEqual([["a0"]]);
    expect(JSON.parse(await readFile(marker, "utf8")).version).toBe(1);
    await store.append(SESSION_A, incoming(SESSION_A, "a1"));
    expect(JSON.parse(await readFile(marker, "utf8")).version).toBe(2);
    store = await reopen(store);
    expect((await collect(store)).map(messageIds)).toEqual([["a0", "a1"]]);
  });

  it("validates the journal size", () => {
    expect(() => createFileStore({ journalBytes: 100 })).toThrow(RangeError);
    expect(() => createFileStore({ journalBytes: 1.5e6 + 0.5 })).toThrow(RangeError);
  });
});
