// The file store's basic contract: records round-trip in order, appends share fsyncs,
// restarts read the same records, and options are checked.
import { readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  createFileStore,
  type FileStoreFileSystem,
  nodeFileSystem,
  openFileStore,
} from "./index.js";
import {
  bytesOf,
  capture,
  closeAfterTest,
  collect,
  incoming,
  internal,
  logPath,
  open,
  reopen,
  root,
  SESSION_A,
  SESSION_B,
  useStoreHarness,
} from "./testing/store-harness.js";

useStoreHarness();

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

  it("names files safely whatever the session id", async () => {
    let store = open();
    const ids = ["../../escape", "a/b\\c", "ümlaut-Ωmega", "x".repeat(400), "CaseSensitive"];
    ids.push("casesensitive");
    for (const id of ids) await store.append(id, incoming(id, "m0", true));
    await store.checkpoint();
    const names = await readdir(join(root(), "data", "logs"));
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
      directory: join(root(), "data"),
      logger: capture(),
      maxOpenFiles: 4,
      fileSystem: counting,
    });
    closeAfterTest(store);
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

  it("validates its options", () => {
    expect(() => createFileStore({ maxOpenFiles: 0 })).toThrow(RangeError);
    expect(() => createFileStore({ deleteTerminalAfterMs: -1 })).toThrow(RangeError);
  });

  it("is usable through openFileStore", async () => {
    const directory = join(root(), "opened");
    const store = await openFileStore({ directory, logger: capture() });
    closeAfterTest(store);
    expect(store.directory).toBe(directory);
  });
});
