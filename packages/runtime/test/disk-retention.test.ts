import { type Clock, createDevIdentity, createRuntime, type MacpRuntime } from "@macp/core";
import { SessionState } from "@macp/proto";
import { type FileStore, openFileStore } from "@macp/store-file";
import { afterEach, describe, expect, it } from "vitest";
import { createDiskRetention } from "../src/disk-retention.js";
import { envelope, newSessionId, sessionStartPayload } from "../src/examples/support.js";
import { createLogger } from "../src/logger.js";
import { tempDir } from "./helpers.js";

const caller = createDevIdentity("agent://a");

/** Starts a decision session of `caller` alone and returns its id. */
async function startSession(runtime: MacpRuntime): Promise<string> {
  const sessionId = newSessionId();
  const ack = await runtime.send(
    envelope({
      mode: "macp.mode.decision.v1",
      sessionId,
      sender: caller.sender,
      messageType: "SessionStart",
      payload: sessionStartPayload({
        intent: "retention",
        participants: ["agent://a"],
        ttlMs: 3_600_000,
      }),
    }),
    caller,
  );
  expect(ack.isOk() && ack.value.ok).toBe(true);
  return sessionId;
}

/** Disk retention of 10 s over `store`, swept only when a test asks. */
function retentionOf(store: FileStore, clock: Clock) {
  return createDiskRetention({
    store,
    clock,
    retentionMs: 10_000,
    intervalMs: 60_000,
    logger: createLogger("silent"),
  });
}

describe("disk retention (MACP_SESSION_DISK_RETENTION_SECS)", () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it("deletes the logs of old terminal sessions once they have left memory, and nothing else", async () => {
    const dir = await tempDir("retention");
    cleanups.push(() => dir.remove());
    let now = 1_700_000_000_000;
    const clock = { now: () => now };
    const store = await openFileStore({ directory: dir.path });
    const retention = retentionOf(store, clock);
    const runtime = createRuntime({
      clock,
      store,
      observer: retention.observer,
      limits: { sessionRetentionMs: 1000, sessionStartsPerMinute: 100 },
    });
    cleanups.push(() => runtime.close());
    const ended = await startSession(runtime);
    const open = await startSession(runtime);
    const cancelled = await runtime.cancelSession(ended, "done", caller);
    expect(cancelled.isOk() && cancelled.value.sessionState).toBe(SessionState.CANCELLED);

    // Terminal but still in memory: kept.
    now += 20_000;
    expect(await retention.sweep(runtime)).toBe(0);

    // Evicted from memory (its memory retention is 1 s) and started > 10 s ago: deleted.
    await runtime.processDueWork();
    expect(runtime.inspectSession(ended)).toBeUndefined();
    // The store no longer tracks the evicted session's log in memory; it is on disk.
    await store.checkpoint();
    expect(store.stats().cachedSessions).toBe(1);
    expect(await store.read(ended)).toHaveLength(2);
    expect(await retention.sweep(runtime)).toBe(1);
    expect(await store.isDeleted(ended)).toBe(true);
    expect(await store.read(ended)).toBeUndefined();
    expect(store.stats().cachedSessions).toBe(1);
    expect(await store.isDeleted(open)).toBe(false);
    expect(runtime.inspectSession(open)?.metadata.state).toBe(SessionState.OPEN);
    expect(await retention.sweep(runtime)).toBe(0);
  });

  it("deletes, after a restart, the logs of sessions that were over and out of memory before it", async () => {
    const dir = await tempDir("retention-restart");
    cleanups.push(() => dir.remove());
    let now = 1_700_000_000_000;
    const clock = { now: () => now };
    const limits = { sessionRetentionMs: 1000, sessionStartsPerMinute: 100 };

    // First run: a session starts and is cancelled; the runtime stops before any sweep.
    const firstStore = await openFileStore({ directory: dir.path });
    const first = createRuntime({ clock, store: firstStore, limits });
    const sessionId = await startSession(first);
    expect((await first.cancelSession(sessionId, "done", caller)).isOk()).toBe(true);
    await first.close();

    // Restart well past both retentions: recovery does not load the session back.
    now += 60_000;
    const store = await openFileStore({ directory: dir.path });
    const retention = retentionOf(store, clock);
    const runtime = createRuntime({ clock, store, observer: retention.observer, limits });
    cleanups.push(() => runtime.close());
    await runtime.recover();
    expect(runtime.inspectSession(sessionId)).toBeUndefined();
    expect(await store.read(sessionId)).toHaveLength(2);

    expect(await retention.sweep(runtime)).toBe(1);
    expect(await store.isDeleted(sessionId)).toBe(true);
  });
});
