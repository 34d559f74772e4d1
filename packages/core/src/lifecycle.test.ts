import { SessionLifecycleEvent_EventType as EventType, SessionState } from "@macp/proto";
import { describe, expect, it } from "vitest";
import { ErrorCode } from "./errors.js";
import { createIdentity } from "./identity.js";
import { createRuntime } from "./runtime.js";
import {
  accepted,
  commitmentEnvelope,
  harness,
  proposalEnvelope,
  refusal,
  sessionId,
  startEnvelope,
  take,
  voteEnvelope,
} from "./testing/fixtures.js";

async function open(options: Parameters<typeof harness>[0] = {}, maxSuspendMs = 0) {
  const h = harness(options);
  const id = sessionId();
  await accepted(
    h.runtime,
    startEnvelope(id, "agent://owner", { participants: ["agent://a", "agent://b"], maxSuspendMs }),
  );
  return { ...h, id, owner: h.as("agent://owner") };
}

describe("Cancel, Suspend, Resume: authentication, existence, authority", () => {
  it("checks authentication, then existence, then authority", async () => {
    const { runtime, id, as } = await open();
    const anonymous = { unauthenticated: "no token" };
    expect((await runtime.cancelSession(id, "", anonymous))._unsafeUnwrapErr().code).toBe(
      ErrorCode.UNAUTHENTICATED,
    );
    expect(
      (await runtime.cancelSession(sessionId(), "", as("agent://owner")))._unsafeUnwrapErr().code,
    ).toBe(ErrorCode.SESSION_NOT_FOUND);
    for (const control of [runtime.cancelSession, runtime.suspendSession, runtime.resumeSession]) {
      const refused = await control.call(runtime, id, "", as("agent://a"));
      expect(refused._unsafeUnwrapErr().code).toBe(ErrorCode.FORBIDDEN);
    }
  });

  it("lets holders of commitment authority control the session", async () => {
    const { runtime, as } = harness();
    runtime.registerPolicy(
      {
        $typeName: "macp.v1.PolicyDescriptor",
        policyId: "policy.test.any",
        mode: "*",
        description: "any participant commits",
        rules: JSON.stringify({ commitment: { authority: "any_participant" } }),
        schemaVersion: 1,
        registeredAtUnixMs: 0n,
      },
      as("agent://admin"),
    );
    const id = sessionId();
    await accepted(
      runtime,
      startEnvelope(id, "agent://owner", {
        participants: ["agent://a"],
        policyVersion: "policy.test.any",
      }),
    );
    const ack = (await runtime.suspendSession(id, "", as("agent://a")))._unsafeUnwrap();
    expect(ack.sessionState).toBe(SessionState.SUSPENDED);
  });
});

describe("Cancel", () => {
  it("cancels, refuses later messages, and stays idempotent", async () => {
    const { runtime, id, owner } = await open();
    const ack = (await runtime.cancelSession(id, "stop", owner))._unsafeUnwrap();
    expect(ack).toMatchObject({ ok: true, sessionState: SessionState.CANCELLED, messageId: "" });
    expect(await refusal(runtime, proposalEnvelope(id, "agent://a"))).toBe(
      ErrorCode.SESSION_NOT_OPEN,
    );
    const again = (await runtime.cancelSession(id, "again", owner))._unsafeUnwrap();
    expect(again.sessionState).toBe(SessionState.CANCELLED);
  });

  it("answers a resolved or expired session with its terminal state", async () => {
    const { runtime, id, owner, clock } = await open();
    clock.advance(60_001);
    const ack = (await runtime.cancelSession(id, "late", owner))._unsafeUnwrap();
    expect(ack.sessionState).toBe(SessionState.EXPIRED);
  });

  it("reports a storage failure as INTERNAL_ERROR", async () => {
    const { runtime, id, owner, store } = await open();
    store.failAppends("EIO");
    expect((await runtime.cancelSession(id, "", owner))._unsafeUnwrapErr().code).toBe(
      ErrorCode.INTERNAL_ERROR,
    );
    store.failAppends(undefined);
    expect(runtime.inspectSession(id)?.metadata.state).toBe(SessionState.OPEN);
  });
});

describe("Suspend and Resume", () => {
  it("suspends only OPEN sessions and resumes only SUSPENDED ones", async () => {
    const { runtime, id, owner } = await open();
    expect((await runtime.resumeSession(id, "", owner))._unsafeUnwrapErr().code).toBe(
      ErrorCode.SESSION_NOT_OPEN,
    );
    (await runtime.suspendSession(id, "", owner))._unsafeUnwrap();
    expect((await runtime.suspendSession(id, "", owner))._unsafeUnwrapErr().code).toBe(
      ErrorCode.SESSION_NOT_OPEN,
    );
    expect(await refusal(runtime, proposalEnvelope(id, "agent://a"))).toBe(
      ErrorCode.SESSION_NOT_OPEN,
    );
  });

  it("banks the TTL: the deadline moves by the suspended time", async () => {
    const { runtime, id, owner, clock } = await open();
    const before = runtime.inspectSession(id)!.metadata.expiresAtUnixMs;
    clock.advance(10_000);
    (await runtime.suspendSession(id, "", owner))._unsafeUnwrap();
    clock.advance(120_000); // longer than the TTL itself
    const ack = (await runtime.resumeSession(id, "", owner))._unsafeUnwrap();
    expect(ack.sessionState).toBe(SessionState.OPEN);
    expect(runtime.inspectSession(id)!.metadata.expiresAtUnixMs).toBe(before + 120_000n);
    await accepted(runtime, proposalEnvelope(id, "agent://a"));
  });

  it("expires a session whose cumulative suspension exceeds max_suspend_ms", async () => {
    const { runtime, id, owner, clock } = await open({}, 1000);
    (await runtime.suspendSession(id, "", owner))._unsafeUnwrap();
    clock.advance(600);
    (await runtime.resumeSession(id, "", owner))._unsafeUnwrap();
    (await runtime.suspendSession(id, "", owner))._unsafeUnwrap();
    clock.advance(401);
    const refused = await runtime.resumeSession(id, "", owner);
    expect(refused._unsafeUnwrapErr().code).toBe(ErrorCode.SESSION_NOT_OPEN);
    expect(runtime.inspectSession(id)?.metadata.state).toBe(SessionState.EXPIRED);
  });

  it("expires over-cap suspended sessions from the background sweep too", async () => {
    const { runtime, id, owner, clock } = await open({}, 1000);
    (await runtime.suspendSession(id, "", owner))._unsafeUnwrap();
    expect(runtime.nextDeadline()).toBe(clock.now() + 1001);
    clock.advance(1001);
    await runtime.processDueWork();
    expect(runtime.inspectSession(id)?.metadata.state).toBe(SessionState.EXPIRED);
  });
});

describe("GetSession and ListSessions", () => {
  it("shows a session to its initiator, participants and observers only", async () => {
    const { runtime, id, as } = await open();
    expect((await runtime.getSession(id, { unauthenticated: "x" }))._unsafeUnwrapErr().code).toBe(
      ErrorCode.UNAUTHENTICATED,
    );
    expect((await runtime.getSession(sessionId(), as("agent://a")))._unsafeUnwrapErr().code).toBe(
      ErrorCode.SESSION_NOT_FOUND,
    );
    expect((await runtime.getSession(id, as("agent://stranger")))._unsafeUnwrapErr().code).toBe(
      ErrorCode.FORBIDDEN,
    );
    const observer = createIdentity({ sender: "agent://auditor", isObserver: true });
    expect((await runtime.getSession(id, observer)).isOk()).toBe(true);
    expect((await runtime.getSession(id, as("agent://b"))).isOk()).toBe(true);
  });

  it("reports participant activity, sorted, excluding the SessionStart", async () => {
    const { runtime, id, as, clock } = await open();
    await accepted(runtime, proposalEnvelope(id, "agent://b"));
    clock.advance(5);
    await accepted(runtime, voteEnvelope(id, "agent://a"));
    await accepted(runtime, voteEnvelope(id, "agent://b"));
    const metadata = (await runtime.getSession(id, as("agent://a")))._unsafeUnwrap();
    expect(metadata.participantActivity.map((p) => [p.participantId, p.messageCount])).toEqual([
      ["agent://a", 1],
      ["agent://b", 2],
    ]);
  });

  it("pages through every session with next_page_token", async () => {
    const { runtime, as } = harness();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const id = sessionId();
      ids.push(id);
      await accepted(runtime, startEnvelope(id, "agent://a"));
    }
    const seen: string[] = [];
    let token = "";
    let pages = 0;
    do {
      const page = runtime
        .listSessions({ pageSize: 2, pageToken: token }, as("agent://x"))
        ._unsafeUnwrap();
      seen.push(...page.sessions.map((s) => s.sessionId));
      token = page.nextPageToken;
      pages++;
    } while (token !== "");
    expect(seen).toEqual(ids);
    expect(pages).toBe(3);
    const all = runtime
      .listSessions({ pageSize: 0, pageToken: "" }, as("agent://x"))
      ._unsafeUnwrap();
    expect(all.sessions).toHaveLength(5);
    expect(all.nextPageToken).toBe("");
  });

  it("refuses bad paging input and unauthenticated callers", () => {
    const { runtime, as } = harness();
    expect(
      runtime.listSessions({ pageSize: -1, pageToken: "" }, as("a"))._unsafeUnwrapErr().code,
    ).toBe(ErrorCode.INVALID_REQUEST);
    expect(
      runtime.listSessions({ pageSize: 1, pageToken: "zzz!" }, as("a"))._unsafeUnwrapErr().code,
    ).toBe(ErrorCode.INVALID_REQUEST);
    expect(
      runtime
        .listSessions({ pageSize: 1, pageToken: "" }, { unauthenticated: "x" })
        ._unsafeUnwrapErr().code,
    ).toBe(ErrorCode.UNAUTHENTICATED);
  });
});

describe("eviction and session-id tombstones", () => {
  it("evicts terminal sessions after retention and never reuses their ids", async () => {
    const { runtime, id, owner, clock } = await open({ limits: { sessionRetentionMs: 1000 } });
    (await runtime.cancelSession(id, "", owner))._unsafeUnwrap();
    clock.advance(999);
    await runtime.processDueWork();
    expect(runtime.inspectSession(id)).toBeDefined();
    clock.advance(1);
    await runtime.processDueWork();
    expect(runtime.inspectSession(id)).toBeUndefined();
    expect((await runtime.getSession(id, owner))._unsafeUnwrapErr().code).toBe(
      ErrorCode.SESSION_NOT_FOUND,
    );
    expect(await refusal(runtime, startEnvelope(id, "agent://owner", { messageId: "new" }))).toBe(
      ErrorCode.SESSION_ALREADY_EXISTS,
    );
  });

  it("drops the memory store's records of evicted sessions, keeping their ids reserved (regression: a soak grew 34.5 MB/min)", async () => {
    const { runtime, store, clock, as } = harness({ limits: { sessionRetentionMs: 60_000 } });
    const held = () => ids.filter((id) => runtime.inspectSession(id) !== undefined).length;
    const ids: string[] = [];
    for (let round = 0; round < 4; round++) {
      for (let n = 0; n < 250; n++) {
        const id = sessionId();
        const [owner, voter] = [`agent://owner-${round}-${n}`, `agent://voter-${round}-${n}`];
        await accepted(
          runtime,
          startEnvelope(id, owner, { participants: [owner, voter] }),
          as(owner),
        );
        await accepted(runtime, proposalEnvelope(id, owner), as(owner));
        await accepted(runtime, voteEnvelope(id, voter), as(voter));
        await accepted(runtime, commitmentEnvelope(id, owner), as(owner));
        ids.push(id);
      }
      clock.advance(30_000);
      await runtime.processDueWork();
      // Only the sessions that ended within the retention are still held, with their logs.
      expect(held()).toBeLessThanOrEqual(500);
      expect(store.recordCount).toBe(held() * 4);
    }
    clock.advance(60_000);
    await runtime.processDueWork();
    expect(held()).toBe(0);
    expect(store.recordCount).toBe(0);

    const reused = ids[0] as string;
    expect(await refusal(runtime, startEnvelope(reused, "agent://a", { messageId: "again" }))).toBe(
      ErrorCode.SESSION_ALREADY_EXISTS,
    );
    const rebuilt = createRuntime({ clock, store });
    await rebuilt.recover();
    expect(rebuilt.inspectSession(reused)).toBeUndefined();
    expect(await refusal(rebuilt, startEnvelope(reused, "agent://a", { messageId: "again" }))).toBe(
      ErrorCode.SESSION_ALREADY_EXISTS,
    );
  });

  it("tells the store at recovery of the sessions it does not load, and counts each once (regression: the file store kept every recovered session in memory)", async () => {
    const { runtime, store, clock, as } = harness({ limits: { sessionRetentionMs: 60_000 } });
    const ended: string[] = [];
    for (let n = 0; n < 3; n++) {
      const id = sessionId();
      await accepted(runtime, startEnvelope(id, "agent://owner"), as("agent://owner"));
      (await runtime.cancelSession(id, "", as("agent://owner")))._unsafeUnwrap();
      ended.push(id);
    }
    const open = sessionId();
    await accepted(runtime, startEnvelope(open, "agent://owner"), as("agent://owner"));
    clock.advance(60_000);

    const evicted: string[] = [];
    const observed: typeof store = {
      ...store,
      evicted(id) {
        evicted.push(id);
        store.evicted?.(id);
      },
      loadAll: () => store.loadAll(),
      read: (id) => store.read(id),
    };
    const rebuilt = createRuntime({
      clock,
      store: observed,
      limits: { sessionRetentionMs: 60_000 },
    });
    expect((await rebuilt.recover()).sessions).toBe(4);
    expect(evicted.sort()).toEqual([...ended].sort());
    expect(store.recordCount).toBe(1);
    expect(rebuilt.inspectSession(open)).toBeDefined();
    expect(
      await refusal(
        rebuilt,
        startEnvelope(ended[0] as string, "agent://a", { messageId: "again" }),
      ),
    ).toBe(ErrorCode.SESSION_ALREADY_EXISTS);
  });

  it("expires OPEN sessions from the sweep and emits EXPIRED", async () => {
    const { runtime, clock, as } = await open();
    const events = runtime.watchSessions(as("agent://w"))._unsafeUnwrap();
    clock.advance(60_001);
    await runtime.processDueWork();
    const [created, expired] = await take(events, 2);
    expect(created?.eventType).toBe(EventType.CREATED);
    expect(expired?.eventType).toBe(EventType.EXPIRED);
    expect(expired?.session?.state).toBe(SessionState.EXPIRED);
  });
});

describe("recovery", () => {
  it("rebuilds every session exactly, including suspended time and tombstones", async () => {
    const { runtime, store, clock, as } = harness();
    const resolved = sessionId();
    await accepted(
      runtime,
      startEnvelope(resolved, "agent://a", { participants: ["agent://a", "agent://b"] }),
    );
    await accepted(runtime, proposalEnvelope(resolved, "agent://a"));
    await accepted(runtime, voteEnvelope(resolved, "agent://b"));
    await accepted(runtime, commitmentEnvelope(resolved, "agent://a"));
    const suspended = sessionId();
    await accepted(runtime, startEnvelope(suspended, "agent://a"));
    clock.advance(100);
    (await runtime.suspendSession(suspended, "", as("agent://a")))._unsafeUnwrap();
    clock.advance(50);
    const cancelled = sessionId();
    await accepted(runtime, startEnvelope(cancelled, "agent://a"));
    (await runtime.cancelSession(cancelled, "", as("agent://a")))._unsafeUnwrap();

    const rebuilt = createRuntime({ clock, store });
    const report = await rebuilt.recover();
    expect(report).toMatchObject({ sessions: 3, quarantined: [] });
    for (const id of [resolved, suspended, cancelled]) {
      expect(rebuilt.inspectSession(id)).toEqual(runtime.inspectSession(id));
    }
    expect(
      await refusal(rebuilt, startEnvelope(resolved, "agent://a", { messageId: "again" })),
    ).toBe(ErrorCode.SESSION_ALREADY_EXISTS);
    (await rebuilt.resumeSession(suspended, "", as("agent://a")))._unsafeUnwrap();
  });

  it("quarantines a log that does not begin with a SessionStart, and keeps the others", async () => {
    const { runtime, store, clock } = harness();
    const good = sessionId();
    await accepted(runtime, startEnvelope(good, "agent://a"));
    const bad = sessionId();
    store.append(bad, {
      kind: "internal",
      type: "TtlExpired",
      receivedAtMs: 1,
      payload: new Uint8Array(),
    });
    const rebuilt = createRuntime({ clock, store });
    const report = await rebuilt.recover();
    expect(report.quarantined.map((q) => q.sessionId)).toEqual([bad]);
    expect(rebuilt.inspectSession(good)).toBeDefined();
    expect(await refusal(rebuilt, startEnvelope(bad, "agent://a"))).toBe(
      ErrorCode.SESSION_ALREADY_EXISTS,
    );
    const strict = createRuntime({ clock, store, strictRecovery: true });
    await expect(strict.recover()).rejects.toThrow(bad);
  });
});
