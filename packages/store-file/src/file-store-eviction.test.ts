// Eviction: the store stops tracking the log of a session the runtime evicted,
// once every record of it is in its log file, and finds the log again on disk.
// Without it the store held an entry for every session ever written (a runtime
// that served millions of sessions held hundreds of MB for them).
import { randomUUID } from "node:crypto";
import { access, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createDevIdentity, createRuntime, type LogRecord, type MacpRuntime } from "@macp/core";
import { SimulatedClock, startEnvelope } from "@macp/core/testing";
import type { Envelope } from "@macp/proto";
import { describe, expect, it } from "vitest";
import type { FileStore } from "./index.js";
import {
  bytesOf,
  collect,
  crashCopy,
  incoming,
  internal,
  logPath,
  open,
  openAt,
  reopen,
  root,
  SESSION_A,
  SESSION_B,
  useStoreHarness,
} from "./testing/store-harness.js";

useStoreHarness();

const recordsOf = (sessionId: string) => [
  incoming(sessionId, "m0", true),
  incoming(sessionId, "m1"),
  internal(),
];

async function write(store: FileStore, sessionId: string): Promise<void> {
  for (const record of recordsOf(sessionId)) await store.append(sessionId, record);
}

/** Appends the records and evicts the session before they are durable; the log stays tracked. */
async function evictWithAppendsInFlight(
  store: FileStore,
  records: readonly LogRecord[],
  tracked: number,
): Promise<void> {
  const appends = records.map((record) => store.append(SESSION_A, record));
  store.evicted(SESSION_A);
  expect(store.stats().cachedSessions).toBe(tracked);
  await Promise.all(appends);
  expect(store.stats().cachedSessions).toBe(tracked);
}

/** After a checkpoint the log is forgotten, and it reads the same from disk, before and after a restart. */
async function expectForgottenAfterCheckpoint(
  store: FileStore,
  expected: readonly LogRecord[],
  tracked: number,
): Promise<void> {
  expect(bytesOf(await store.read(SESSION_A))).toEqual(bytesOf(expected));
  await store.checkpoint();
  expect(store.stats().cachedSessions).toBe(tracked);
  expect(bytesOf(await store.read(SESSION_A))).toEqual(bytesOf(expected));
  const restarted = await reopen(store);
  expect(bytesOf(await restarted.read(SESSION_A))).toEqual(bytesOf(expected));
}

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

describe("file store eviction", () => {
  it("forgets an evicted session's log once the checkpoint has written its records (regression: every session ever written stayed in memory)", async () => {
    const store = open();
    await write(store, SESSION_A);
    await write(store, SESSION_B);
    expect(store.stats().cachedSessions).toBe(2);

    store.evicted(SESSION_A);
    // Its records are only in the journal: the store must keep them until they are in the log.
    expect(store.stats().cachedSessions).toBe(2);
    expect(bytesOf(await store.read(SESSION_A))).toEqual(bytesOf(recordsOf(SESSION_A)));

    await store.checkpoint();
    expect(store.stats().cachedSessions).toBe(1);
    expect(store.stats().openFiles).toBe(1);
    expect(bytesOf(await store.read(SESSION_A))).toEqual(bytesOf(recordsOf(SESSION_A)));
    expect(bytesOf(await store.read(SESSION_B))).toEqual(bytesOf(recordsOf(SESSION_B)));
  });

  it("forgets a checkpointed session's log at once, and recovers it after a restart", async () => {
    let store = open();
    await write(store, SESSION_A);
    await write(store, SESSION_B);
    await store.checkpoint();
    store.evicted(SESSION_A);
    store.evicted(SESSION_B);
    expect(store.stats().cachedSessions).toBe(0);
    expect(store.stats().openFiles).toBe(0);

    store = await reopen(store);
    const stored = await collect(store);
    expect(stored.map((s) => s.sessionId).sort()).toEqual([SESSION_A, SESSION_B].sort());
    for (const session of stored) {
      expect("records" in session && bytesOf(session.records)).toEqual(
        bytesOf(recordsOf(session.sessionId)),
      );
    }
  });

  it("continues a forgotten log where it ends when the session is appended to again", async () => {
    const store = open();
    await write(store, SESSION_A);
    await store.checkpoint();
    store.evicted(SESSION_A);
    expect(store.stats().cachedSessions).toBe(0);

    const later = internal(1_700_000_009_000);
    await store.append(SESSION_A, later);
    expect(store.stats().cachedSessions).toBe(1);
    const expected = bytesOf([...recordsOf(SESSION_A), later]);
    expect(bytesOf(await store.read(SESSION_A))).toEqual(expected);
    await store.checkpoint();
    const restarted = await reopen(store);
    expect(bytesOf(await restarted.read(SESSION_A))).toEqual(expected);
  });

  it("deletes a forgotten session: its log goes, its id stays reserved", async () => {
    let store = open();
    await write(store, SESSION_A);
    await store.checkpoint();
    store.evicted(SESSION_A);
    expect(store.stats().cachedSessions).toBe(0);

    await store.delete(SESSION_A);
    expect(await exists(logPath(SESSION_A))).toBe(false);
    expect(await store.read(SESSION_A)).toBeUndefined();
    expect(store.stats().cachedSessions).toBe(0);
    await expect(store.append(SESSION_A, internal())).rejects.toMatchObject({
      code: "SESSION_DELETED",
    });

    store = await reopen(store);
    expect(await collect(store)).toEqual([{ sessionId: SESSION_A, records: [] }]);
  });

  it("deletes a session evicted while its records were still only in the journal", async () => {
    let store = open();
    await write(store, SESSION_A);
    store.evicted(SESSION_A);
    await store.delete(SESSION_A);
    expect(store.stats().cachedSessions).toBe(0);
    await store.checkpoint();
    expect(await exists(logPath(SESSION_A))).toBe(false);
    store = await reopen(store);
    expect(await collect(store)).toEqual([{ sessionId: SESSION_A, records: [] }]);
  });

  it("loses nothing in a crash right after an eviction, before or after the checkpoint", async () => {
    const store = open();
    await write(store, SESSION_A);
    store.evicted(SESSION_A);
    const beforeCheckpoint = await crashCopy();
    await store.checkpoint();
    expect(store.stats().cachedSessions).toBe(0);
    const afterCheckpoint = await crashCopy();

    for (const copy of [beforeCheckpoint, afterCheckpoint]) {
      const restarted = openAt(copy);
      const stored = await collect(restarted);
      expect(stored.map((s) => s.sessionId)).toEqual([SESSION_A]);
      expect(bytesOf("records" in stored[0]! ? stored[0].records : [])).toEqual(
        bytesOf(recordsOf(SESSION_A)),
      );
      await restarted.close();
    }
  });

  describe("reject paths", () => {
    it("ignores an unknown id, tracking nothing for it", async () => {
      const store = open();
      await write(store, SESSION_A);
      store.evicted(SESSION_B);
      store.evicted("never-seen");
      await store.checkpoint();
      expect(store.stats().cachedSessions).toBe(1);
      expect(await store.read(SESSION_B)).toBeUndefined();
      expect(bytesOf(await store.read(SESSION_A))).toEqual(bytesOf(recordsOf(SESSION_A)));
    });

    it("ignores a second eviction of the same session", async () => {
      const store = open();
      await write(store, SESSION_A);
      store.evicted(SESSION_A);
      store.evicted(SESSION_A);
      await store.checkpoint();
      store.evicted(SESSION_A);
      expect(store.stats().cachedSessions).toBe(0);
      expect(bytesOf(await store.read(SESSION_A))).toEqual(bytesOf(recordsOf(SESSION_A)));
    });

    it("keeps the log of a session evicted with appends in flight until they are written", async () => {
      const store = open();
      await write(store, SESSION_A);
      await store.checkpoint();
      // The store knows where A's log ends, so these go straight to the commit queue.
      const later = [internal(1_700_000_009_000), internal(1_700_000_009_001)];
      await evictWithAppendsInFlight(store, later, 1);
      await expectForgottenAfterCheckpoint(store, [...recordsOf(SESSION_A), ...later], 0);
    });

    it("keeps the log of a new session evicted with its first appends in flight", async () => {
      const store = open();
      await store.append(SESSION_B, incoming(SESSION_B, "warm-up", true));
      await store.checkpoint();
      await evictWithAppendsInFlight(store, recordsOf(SESSION_A), 2);
      await expectForgottenAfterCheckpoint(store, recordsOf(SESSION_A), 1);
    });

    it("keeps the log of a session evicted while its first append after a restart looks at the file", async () => {
      let store = open();
      await write(store, SESSION_A);
      store = await reopen(store);
      await store.ready();
      const later = internal(1_700_000_009_000);
      // The store has not looked at the log yet: this append reads it first.
      await evictWithAppendsInFlight(store, [later], 1);
      await expectForgottenAfterCheckpoint(store, [...recordsOf(SESSION_A), later], 0);
    });

    it("keeps the records of an eviction made before the store was ready", async () => {
      const store = open();
      const appends = recordsOf(SESSION_A).map((record) => store.append(SESSION_A, record));
      store.evicted(SESSION_A);
      await Promise.all(appends);
      expect(store.stats().cachedSessions).toBe(1);
      await expectForgottenAfterCheckpoint(store, recordsOf(SESSION_A), 0);
    });

    it("keeps a quarantined log and its reason", async () => {
      let store = open();
      await write(store, SESSION_A);
      store = await reopen(store);
      await store.close();
      await writeFile(logPath(SESSION_A), "not a log file at all, but long enough to read");
      store = open();
      const stored = await collect(store);
      expect(stored[0]).toMatchObject({ sessionId: SESSION_A, error: expect.any(String) });
      store.evicted(SESSION_A);
      await store.checkpoint();
      expect(store.stats().cachedSessions).toBe(1);
      await expect(store.append(SESSION_A, internal())).rejects.toMatchObject({
        code: "SESSION_QUARANTINED",
      });
    });

    it("ignores an eviction after close", async () => {
      const store = open();
      await write(store, SESSION_A);
      await store.close();
      expect(() => store.evicted(SESSION_A)).not.toThrow();
    });
  });
});

describe("file store eviction through the runtime", () => {
  const clock = new SimulatedClock();
  const participants = ["agent://a", "agent://b"];

  function openRuntime(): { runtime: MacpRuntime; store: FileStore } {
    const store = openAt(join(root(), "data"));
    const runtime = createRuntime({ clock, store, limits: { sessionRetentionMs: 0 } });
    return { runtime, store };
  }

  async function send(runtime: MacpRuntime, envelope: Envelope) {
    return runtime.send(envelope, createDevIdentity(envelope.sender));
  }

  it("forgets evicted sessions, still refuses their ids, and lets go of them after recovery too", async () => {
    let { runtime, store } = openRuntime();
    await runtime.recover();
    const ended = Array.from({ length: 5 }, () => randomUUID());
    for (const sessionId of ended) {
      expect(
        (await send(runtime, startEnvelope(sessionId, "agent://a", { participants }))).isOk(),
      ).toBe(true);
      const cancelled = await runtime.cancelSession(
        sessionId,
        "done",
        createDevIdentity("agent://a"),
      );
      expect(cancelled.isOk()).toBe(true);
    }
    const open = randomUUID();
    expect((await send(runtime, startEnvelope(open, "agent://a", { participants }))).isOk()).toBe(
      true,
    );
    clock.advance(1);
    await runtime.processDueWork();
    for (const sessionId of ended) expect(runtime.inspectSession(sessionId)).toBeUndefined();
    await store.checkpoint();
    expect(store.stats().cachedSessions).toBe(1);

    const reuse = await send(runtime, startEnvelope(ended[0]!, "agent://a", { participants }));
    expect(reuse.isErr() ? reuse.error.code : "accepted").toBe("SESSION_ALREADY_EXISTS");
    expect(await store.read(ended[1]!)).toHaveLength(2);
    await runtime.close();
    await store.close();

    ({ runtime, store } = openRuntime());
    expect(await runtime.recover()).toMatchObject({ sessions: 6, quarantined: [] });
    // Recovery read every log, and kept only the open session's.
    await store.checkpoint();
    expect(store.stats().cachedSessions).toBe(1);
    const again = await send(runtime, startEnvelope(ended[2]!, "agent://a", { participants }));
    expect(again.isErr() ? again.error.code : "accepted").toBe("SESSION_ALREADY_EXISTS");
    expect(await store.read(ended[2]!)).toHaveLength(2);
    await runtime.close();
  });
});
