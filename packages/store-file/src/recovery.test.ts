import { randomUUID } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createDevIdentity, createRuntime, type MacpRuntime, type RuntimeLogger } from "@macp/core";
import {
  commitmentEnvelope as commitment,
  proposalEnvelope,
  SimulatedClock,
  startEnvelope,
  voteEnvelope,
} from "@macp/core/testing";
import { type Envelope, SessionState } from "@macp/proto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createFileStore, type FileStore } from "./index.js";
import { logFileName } from "./log-file.js";

// The file store under the real kernel: what a runtime acknowledged must come
// back identical after a restart, including sessions that ended or were deleted.

const quiet: RuntimeLogger = { info() {}, warn() {}, error() {} };

let directory: string;
const clock = new SimulatedClock();

beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), "macp-store-recovery-"));
});

afterEach(async () => {
  await rm(directory, { recursive: true, force: true });
});

const start = (sessionId: string, sender: string, participants: string[]) =>
  startEnvelope(sessionId, sender, { participants });
const proposal = (sessionId: string, sender: string, proposalId: string) =>
  proposalEnvelope(sessionId, sender, proposalId);
const vote = (sessionId: string, sender: string, proposalId: string) =>
  voteEnvelope(sessionId, sender, "APPROVE", proposalId);

async function send(runtime: MacpRuntime, env: Envelope): Promise<{ duplicate: boolean }> {
  const result = await runtime.send(env, createDevIdentity(env.sender));
  if (result.isErr()) throw new Error(`${env.messageType} refused: ${result.error.code}`);
  return result.value;
}

function open(): { runtime: MacpRuntime; store: FileStore } {
  const store = createFileStore({ directory, logger: quiet });
  return { runtime: createRuntime({ clock, store, logger: quiet }), store };
}

async function describeSession(runtime: MacpRuntime, sessionId: string) {
  const metadata = await runtime.getSession(sessionId, createDevIdentity("agent://a"));
  return {
    metadata: metadata.isOk() ? metadata.value : metadata.error.code,
    ...runtime.inspectSession(sessionId),
  };
}

describe("recovery through the runtime", () => {
  it("rebuilds every session exactly from the file store", async () => {
    let { runtime, store } = open();
    expect(await runtime.recover()).toMatchObject({ sessions: 0, quarantined: [] });
    const participants = ["agent://a", "agent://b", "agent://c"];

    const resolved = randomUUID();
    await send(runtime, start(resolved, "agent://a", participants));
    await send(runtime, proposal(resolved, "agent://a", "p1"));
    await send(runtime, vote(resolved, "agent://b", "p1"));
    await send(runtime, vote(resolved, "agent://c", "p1"));
    await send(runtime, commitment(resolved, "agent://a"));

    const suspended = randomUUID();
    await send(runtime, start(suspended, "agent://a", participants));
    clock.advance(1_000);
    expect(
      (await runtime.suspendSession(suspended, "pause", createDevIdentity("agent://a"))).isOk(),
    ).toBe(true);

    const cancelled = randomUUID();
    await send(runtime, start(cancelled, "agent://a", participants));
    expect(
      (await runtime.cancelSession(cancelled, "stop", createDevIdentity("agent://a"))).isOk(),
    ).toBe(true);

    // Many open sessions written concurrently, so their appends share batches.
    const busy = Array.from({ length: 30 }, () => randomUUID());
    await Promise.all(
      busy.map(async (sessionId, i) => {
        await send(runtime, start(sessionId, "agent://a", participants));
        for (let n = 0; n < 4; n++) {
          clock.advance(7);
          await send(runtime, proposal(sessionId, participants[(i + n) % 3] as string, `p${n}`));
        }
      }),
    );
    const retried = proposal(busy[0] as string, "agent://a", "p-retry");
    await send(runtime, retried);

    const ids = [resolved, suspended, cancelled, ...busy];
    const before = await Promise.all(ids.map((id) => describeSession(runtime, id)));
    expect(before[0]?.metadata).toMatchObject({ state: SessionState.RESOLVED });
    expect(before[1]?.metadata).toMatchObject({ state: SessionState.SUSPENDED });
    expect(before[2]?.metadata).toMatchObject({ state: SessionState.CANCELLED });
    const stats = store.stats();
    expect(stats.appends).toBeGreaterThan(ids.length * 2);
    console.info(
      `runtime traffic: ${stats.appends} records, ${stats.fsyncs} fsyncs, ${stats.batches} batches`,
    );
    await runtime.close();
    await expect(
      store.append(resolved, {
        kind: "internal",
        type: "TtlExpired",
        receivedAtMs: 0,
        payload: new Uint8Array(),
      }),
    ).rejects.toMatchObject({ code: "CLOSED" });

    ({ runtime, store } = open());
    const report = await runtime.recover();
    expect(report.quarantined).toEqual([]);
    expect(report.sessions).toBe(ids.length);
    const after = await Promise.all(ids.map((id) => describeSession(runtime, id)));
    expect(after).toEqual(before);

    // The recovered dedup sets answer retries, and the ids stay taken.
    expect(await send(runtime, retried)).toMatchObject({ duplicate: true });
    const again = await runtime.send(
      start(resolved, "agent://a", participants),
      createDevIdentity("agent://a"),
    );
    expect(again.isOk() ? again.value.duplicate : again.error.code).toBe(true);
    await runtime.close();
  });

  it("keeps a deleted session's id reserved after a restart", async () => {
    let { runtime, store } = open();
    await runtime.recover();
    const sessionId = randomUUID();
    await send(runtime, start(sessionId, "agent://a", ["agent://a", "agent://b"]));
    await runtime.close();

    // Retention, as a host would run it: the runtime is down, the store deletes.
    store = createFileStore({ directory, logger: quiet });
    await store.delete(sessionId);
    await store.close();

    ({ runtime, store } = open());
    await runtime.recover();
    expect(await store.tombstones()).toEqual([sessionId]);
    const reuse = await runtime.send(
      start(sessionId, "agent://a", ["agent://a", "agent://b"]),
      createDevIdentity("agent://a"),
    );
    expect(reuse.isErr() ? reuse.error.code : "accepted").toBe("SESSION_ALREADY_EXISTS");
    await runtime.close();
  });

  // An acknowledged session must never vanish: a log emptied, or torn after the
  // journal was checkpointed past its records, is quarantined, and fatal under
  // strict recovery.
  for (const [damage, change] of [
    ["emptied", () => new Uint8Array(0)],
    ["torn after a clean shutdown", (bytes: Uint8Array) => bytes.subarray(0, bytes.length - 5)],
  ] as const) {
    it(`quarantines a session whose log was ${damage}, and refuses to start under strict recovery`, async () => {
      let { runtime } = open();
      await runtime.recover();
      const sessionId = randomUUID();
      await send(runtime, start(sessionId, "agent://a", ["agent://a", "agent://b"]));
      await send(runtime, proposal(sessionId, "agent://a", "p1"));
      await runtime.close();
      const path = join(directory, "logs", logFileName(sessionId));
      await writeFile(path, change(await readFile(path)));

      const strictStore = createFileStore({ directory, logger: quiet });
      const strict = createRuntime({
        clock,
        store: strictStore,
        logger: quiet,
        strictRecovery: true,
      });
      await expect(strict.recover()).rejects.toThrow(`session ${sessionId} could not be recovered`);
      await strict.close();

      ({ runtime } = open());
      const report = await runtime.recover();
      expect(report.quarantined.map((entry) => entry.sessionId)).toEqual([sessionId]);
      expect((await describeSession(runtime, sessionId)).metadata).toBe("SESSION_NOT_FOUND");
      const reuse = await runtime.send(
        start(sessionId, "agent://a", ["agent://a", "agent://b"]),
        createDevIdentity("agent://a"),
      );
      expect(reuse.isErr() ? reuse.error.code : "accepted").toBe("SESSION_ALREADY_EXISTS");
      await runtime.close();
    });
  }
});
