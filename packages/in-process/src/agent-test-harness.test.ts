import { create, toBinary } from "@bufbuild/protobuf";
import { createIdentity, createMemoryStore, createRuntime } from "@macp/core";
import { DEFAULT_EPOCH_MS } from "@macp/core/testing";
import {
  type Envelope,
  EnvelopeSchema,
  SessionLifecycleEvent_EventType,
  SessionStartPayloadSchema,
  SessionState,
} from "@macp/proto";
import { describe, expect, it } from "vitest";
import {
  type AgentTestHarness,
  createAgentTestHarness,
  type MacpClient,
} from "./agent-test-harness.js";

const ALICE = "agent://alice";
const BOB = "agent://bob";
const T0 = DEFAULT_EPOCH_MS;

function sessionId(n: number): string {
  return `harness-test-session-${String(n).padStart(4, "0")}`;
}

function start(
  h: AgentTestHarness,
  id: string,
  options: { ttlMs?: number; maxSuspendMs?: number } = {},
): Envelope {
  return create(EnvelopeSchema, {
    macpVersion: "1.0",
    mode: "macp.mode.decision.v1",
    messageType: "SessionStart",
    messageId: `start-${id}`,
    sessionId: id,
    sender: ALICE,
    timestampUnixMs: BigInt(h.clock.now()),
    payload: toBinary(
      SessionStartPayloadSchema,
      create(SessionStartPayloadSchema, {
        participants: [ALICE, BOB],
        modeVersion: "1.0.0",
        configurationVersion: "cfg-1",
        ttlMs: BigInt(options.ttlMs ?? 60_000),
        maxSuspendMs: BigInt(options.maxSuspendMs ?? 0),
      }),
    ),
  });
}

async function open(client: MacpClient, envelope: Envelope): Promise<void> {
  const { ack } = await client.send({ envelope });
  if (!ack?.ok) throw new Error(`${ack?.error?.code}: ${ack?.error?.message}`);
}

describe("createAgentTestHarness: agents", () => {
  it("gives each agent a client that calls as that agent", async () => {
    const observer = createIdentity({ sender: "agent://auditor", isObserver: true });
    const h = createAgentTestHarness({ agents: [ALICE, BOB, observer] });
    expect([...h.agents.keys()]).toEqual([ALICE, BOB, "agent://auditor"]);
    expect(h.agents.get(ALICE)?.canManageModeRegistry).toBe(true);
    expect(h.client(ALICE)).toBe(h.client(ALICE));

    await open(h.client(ALICE), start(h, sessionId(1)));
    // Bob cannot send as Alice: his client authenticates as Bob.
    const forged = await h.client(BOB).send({ envelope: start(h, sessionId(2)) });
    expect(forged.ack?.error?.code).toBe("UNAUTHENTICATED");
    // The observer reads the session it does not take part in.
    const { metadata } = await h.client("agent://auditor").getSession({ sessionId: sessionId(1) });
    expect(metadata?.initiator).toBe(ALICE);
    await h.close();
  });

  it("refuses unknown and duplicate agents", () => {
    expect(() => createAgentTestHarness({ agents: [ALICE, ALICE] })).toThrow(TypeError);
    const h = createAgentTestHarness({ agents: [ALICE] });
    expect(() => h.client(BOB)).toThrow(/no agent "agent:\/\/bob"/);
  });

  it("starts the clock where told, and the runtime reads only that clock", async () => {
    const h = createAgentTestHarness({ agents: [ALICE], startTimeMs: 1_000_000 });
    await open(h.client(ALICE), start(h, sessionId(1), { ttlMs: 5_000 }));
    expect(h.session(sessionId(1))?.metadata).toMatchObject({
      startedAtUnixMs: 1_000_000n,
      expiresAtUnixMs: 1_005_000n,
    });
    await h.close();
  });
});

describe("createAgentTestHarness: advance", () => {
  it("runs each deadline in the span at its own instant, in time order", async () => {
    const h = createAgentTestHarness({ agents: [ALICE, BOB] });
    const alice = h.client(ALICE);
    await open(alice, start(h, sessionId(1), { ttlMs: 2_000 }));
    await open(alice, start(h, sessionId(2), { ttlMs: 1_000 }));
    await open(alice, start(h, sessionId(3), { ttlMs: 9_000 }));
    const stop = new AbortController();
    const lifecycle = h
      .client(BOB)
      .watchSessions({}, { signal: stop.signal })
      [Symbol.asyncIterator]();
    // The three CREATED events of the initial sync: from here on, Bob is subscribed.
    for (let i = 0; i < 3; i++) await lifecycle.next();

    await h.advance(5_000);
    expect(h.clock.now()).toBe(T0 + 5_000);
    const state = (n: number) => h.session(sessionId(n))?.metadata.state;
    expect([state(1), state(2), state(3)]).toEqual([
      SessionState.EXPIRED,
      SessionState.EXPIRED,
      SessionState.OPEN,
    ]);
    const expired: [string | undefined, bigint][] = [];
    for (let i = 0; i < 2; i++) {
      const { value } = await lifecycle.next();
      expect(value?.event?.eventType).toBe(SessionLifecycleEvent_EventType.EXPIRED);
      expired.push([
        value?.event?.session?.sessionId,
        (value?.event?.observedAtUnixMs ?? 0n) - BigInt(T0),
      ]);
    }
    // Expiry is strict (now > deadline): the first instant it applies is deadline + 1.
    expect(expired).toEqual([
      [sessionId(2), 1_001n],
      [sessionId(1), 2_001n],
    ]);
    stop.abort();
    await h.close();
  });

  it("expires a suspended session when its suspension budget runs out", async () => {
    const h = createAgentTestHarness({ agents: [ALICE] });
    const alice = h.client(ALICE);
    await open(alice, start(h, sessionId(1), { ttlMs: 600_000, maxSuspendMs: 10_000 }));
    await alice.suspendSession({ sessionId: sessionId(1), reason: "waiting for a human" });
    await h.advance(10_000);
    expect(h.session(sessionId(1))?.metadata.state).toBe(SessionState.SUSPENDED);
    expect(h.session(sessionId(1))?.suspendedMs).toBe(10_000);
    await h.advance(1);
    expect(h.session(sessionId(1))?.metadata.state).toBe(SessionState.EXPIRED);
    await h.close();
  });

  it("evicts ended sessions after the retention time, like a long-running server", async () => {
    const h = createAgentTestHarness({
      agents: [ALICE],
      runtime: { limits: { sessionRetentionMs: 60_000 } },
    });
    const alice = h.client(ALICE);
    await open(alice, start(h, sessionId(1)));
    await alice.cancelSession({ sessionId: sessionId(1), reason: "done" });
    await h.advance(59_999);
    expect(h.session(sessionId(1))?.metadata.state).toBe(SessionState.CANCELLED);
    expect(await h.history(sessionId(1))).toHaveLength(1);
    await h.advance(1);
    expect(h.session(sessionId(1))).toBeUndefined();
    await h.close();
  });

  it("serialises overlapping calls, and refuses to go backwards", async () => {
    const h = createAgentTestHarness({ agents: [ALICE] });
    await Promise.all([h.advance(1_000), h.advance(1_000)]);
    expect(h.clock.now()).toBe(T0 + 2_000);
    await h.advanceTo(T0 + 3_000);
    expect(h.clock.now()).toBe(T0 + 3_000);
    await expect(h.advanceTo(T0)).rejects.toThrow(RangeError);
    await expect(h.advance(-1)).rejects.toThrow(RangeError);
    await expect(h.advance(0.5)).rejects.toThrow(RangeError);
    await h.advance(0);
    expect(h.clock.now()).toBe(T0 + 3_000);
    await h.close();
  });
});

describe("createAgentTestHarness: store and close", () => {
  it("uses the store it is given, so a second runtime can recover from it", async () => {
    const store = createMemoryStore();
    const h = createAgentTestHarness({ agents: [ALICE], store });
    await open(h.client(ALICE), start(h, sessionId(1)));
    const recovered = createRuntime({ clock: h.clock, store });
    expect((await recovered.recover()).sessions).toBe(1);
    expect(recovered.inspectSession(sessionId(1))).toEqual(h.session(sessionId(1)));
    await recovered.close();
    await h.close();
  });

  it("close ends open streams and can be called twice", async () => {
    const h = createAgentTestHarness({ agents: [ALICE] });
    const watch = h.client(ALICE).watchSessions({})[Symbol.asyncIterator]();
    const next = watch.next();
    await Promise.all([h.close(), h.close()]);
    expect((await next).done).toBe(true);
  });
});

describe("createAgentTestHarness: transcript", () => {
  it("records calls, refusals and clock moves in order", async () => {
    const h = createAgentTestHarness({ agents: [ALICE, BOB], transcript: true });
    await open(h.client(ALICE), start(h, sessionId(1), { ttlMs: 1_000 }));
    await h
      .client(BOB)
      .getSession({ sessionId: sessionId(9) })
      .catch(() => undefined);
    await h.advance(2_000);
    await h.close();
    const entries = h.transcript?.entries ?? [];
    expect(
      entries.map((entry) =>
        entry.kind === "advance" ? entry.kind : `${entry.kind} ${entry.agent} ${entry.method}`,
      ),
    ).toEqual([
      `request ${ALICE} Send`,
      `response ${ALICE} Send`,
      `request ${BOB} GetSession`,
      `error ${BOB} GetSession`,
      "advance",
    ]);
    expect(entries[3]).toMatchObject({ kind: "error", call: 2, code: "NotFound" });
    expect(entries[4]).toEqual({ kind: "advance", from: T0, to: T0 + 2_000 });
    expect(h.transcript?.toText().split("\n")).toHaveLength(entries.length + 1);
  });

  it("is off unless asked for", () => {
    expect(createAgentTestHarness({ agents: [ALICE] }).transcript).toBeUndefined();
  });
});
