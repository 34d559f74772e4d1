import { create } from "@bufbuild/protobuf";
import { type Envelope, StreamSessionRequestSchema } from "@macp/proto";
import { describe, expect, it } from "vitest";
import { ErrorCode } from "./errors.js";
import { createIdentity } from "./identity.js";
import { MacpStreamError, type SessionStreamOutput } from "./runtime-api.js";
import {
  accepted,
  commitmentEnvelope,
  envelope,
  harness,
  proposalEnvelope,
  sessionId,
  startEnvelope,
  take,
  voteEnvelope,
} from "./testing/fixtures.js";

const frame = (fields: {
  envelope?: Envelope;
  subscribeSessionId?: string;
  afterSequence?: bigint;
}) => create(StreamSessionRequestSchema, fields);

function ids(outputs: SessionStreamOutput[]): string[] {
  return outputs.map((o) =>
    o.kind === "envelope" ? o.envelope.messageId : `error:${o.error.code}`,
  );
}

async function openSession() {
  const h = harness();
  const id = sessionId();
  await accepted(h.runtime, startEnvelope(id, "agent://a", { messageId: "m0" }));
  await accepted(h.runtime, proposalEnvelope(id, "agent://a", "p1", "m1"));
  return { ...h, id };
}

describe("StreamSession", () => {
  it("refuses to open for an unauthenticated caller", () => {
    const { runtime } = harness();
    expect(runtime.openSessionStream({ unauthenticated: "x" })._unsafeUnwrapErr().code).toBe(
      ErrorCode.UNAUTHENTICATED,
    );
  });

  it("echoes the sender's own envelopes and everyone else's in acceptance order", async () => {
    const { runtime, id } = await openSession();
    const stream = runtime
      .openSessionStream(createIdentity({ sender: "agent://b" }))
      ._unsafeUnwrap();
    await stream.push(frame({ envelope: voteEnvelope(id, "agent://b") }));
    await accepted(runtime, voteEnvelope(id, "agent://a"));
    const [mine, theirs] = await take(stream.outputs, 2);
    expect(mine?.kind === "envelope" && mine.envelope.sender).toBe("agent://b");
    expect(theirs?.kind === "envelope" && theirs.envelope.sender).toBe("agent://a");
  });

  it("replays history after after_sequence, then goes live with no gap or duplicate", async () => {
    const { runtime, id, as } = await openSession();
    const stream = runtime.openSessionStream(as("agent://a"))._unsafeUnwrap();
    const pushed = stream.push(frame({ subscribeSessionId: id, afterSequence: 1n }));
    await accepted(runtime, voteEnvelope(id, "agent://a")); // may land during the replay
    await pushed;
    await accepted(runtime, voteEnvelope(id, "agent://b"));
    const outputs = await take(stream.outputs, 3);
    expect(ids(outputs)[0]).toBe("m1");
    expect(outputs.map((o) => o.kind === "envelope" && o.envelope.messageType)).toEqual([
      "Proposal",
      "Vote",
      "Vote",
    ]);
  });

  it("replays nothing for an after_sequence past the end, then follows live", async () => {
    const { runtime, id, as } = await openSession();
    const stream = runtime.openSessionStream(as("agent://a"))._unsafeUnwrap();
    await stream.push(frame({ subscribeSessionId: id, afterSequence: 99n }));
    await accepted(runtime, voteEnvelope(id, "agent://b"));
    const [first] = await take(stream.outputs, 1);
    expect(first?.kind === "envelope" && first.envelope.messageType).toBe("Vote");
  });

  it("replays a whole history longer than the stream buffer without dropping the subscriber", async () => {
    const { runtime, as } = harness({ limits: { sessionStreamBuffer: 4 } });
    const id = sessionId();
    await accepted(runtime, startEnvelope(id, "agent://a"));
    for (let i = 0; i < 20; i++)
      await accepted(runtime, proposalEnvelope(id, "agent://a", `p${i}`));
    const stream = runtime.openSessionStream(as("agent://a"))._unsafeUnwrap();
    const pushed = stream.push(frame({ subscribeSessionId: id }));
    const outputs = await take(stream.outputs, 21);
    await pushed;
    expect(outputs).toHaveLength(21);
  });

  it("answers an unauthorized subscribe inline and stays open and unbound", async () => {
    const { runtime, id } = await openSession();
    const stranger = runtime
      .openSessionStream(createIdentity({ sender: "agent://z" }))
      ._unsafeUnwrap();
    await stranger.push(frame({ subscribeSessionId: id }));
    const other = sessionId();
    await accepted(runtime, startEnvelope(other, "agent://z", { messageId: "z0" }));
    await stranger.push(frame({ subscribeSessionId: other }));
    const outputs = await take(stranger.outputs, 2);
    expect(ids(outputs)).toEqual(["error:FORBIDDEN", "z0"]);
  });

  it("ends the stream when a frame targets another session", async () => {
    const { runtime, id, as } = await openSession();
    const stream = runtime.openSessionStream(as("agent://a"))._unsafeUnwrap();
    await stream.push(frame({ subscribeSessionId: id, afterSequence: 2n }));
    await stream.push(frame({ envelope: startEnvelope(sessionId(), "agent://a") }));
    await expect(take(stream.outputs, 1)).rejects.toSatisfy(
      (e: unknown) => e instanceof MacpStreamError && e.error.code === ErrorCode.INVALID_REQUEST,
    );
  });

  it("ends the stream for frames with neither or both parts, and for unknown subscribe targets", async () => {
    const { runtime, id, as } = await openSession();
    for (const bad of [
      frame({}),
      frame({ subscribeSessionId: id, envelope: voteEnvelope(id, "agent://a") }),
      frame({ subscribeSessionId: sessionId() }),
    ]) {
      const stream = runtime.openSessionStream(as("agent://a"))._unsafeUnwrap();
      await stream.push(bad);
      await expect(take(stream.outputs, 1)).rejects.toBeInstanceOf(MacpStreamError);
    }
  });

  it("keeps application errors inline and the stream open", async () => {
    const { runtime, id, as } = await openSession();
    const stream = runtime.openSessionStream(as("agent://outsider"))._unsafeUnwrap();
    await stream.push(frame({ envelope: proposalEnvelope(id, "agent://outsider", "p9", "bad-1") }));
    await stream.push(
      frame({
        envelope: envelope({ sessionId: id, sender: "agent://outsider", macpVersion: "9" }),
      }),
    );
    const outputs = await take(stream.outputs, 2);
    expect(outputs[0]).toMatchObject({ kind: "error", messageId: "bad-1", sessionId: id });
    expect(ids(outputs)).toEqual(["error:FORBIDDEN", "error:UNSUPPORTED_PROTOCOL_VERSION"]);
  });

  it("ends the stream on ambient envelopes, spoofed senders and non-OPEN sessions", async () => {
    const { runtime, id, as } = await openSession();
    await accepted(runtime, voteEnvelope(id, "agent://a"));
    await accepted(runtime, commitmentEnvelope(id, "agent://a"));
    const cases: [Envelope, ErrorCode][] = [
      [
        envelope({ messageType: "Signal", sessionId: "", mode: "", sender: "agent://a" }),
        ErrorCode.INVALID_REQUEST,
      ],
      [voteEnvelope(id, "agent://mallory"), ErrorCode.UNAUTHENTICATED],
      [voteEnvelope(id, "agent://a"), ErrorCode.SESSION_NOT_OPEN],
    ];
    for (const [env, code] of cases) {
      const stream = runtime.openSessionStream(as("agent://a"))._unsafeUnwrap();
      await stream.push(frame({ envelope: env }));
      await expect(take(stream.outputs, 1)).rejects.toSatisfy(
        (e: unknown) => e instanceof MacpStreamError && e.error.code === code,
      );
    }
  });

  it("says nothing for a duplicate", async () => {
    const { runtime, id, as } = await openSession();
    const stream = runtime.openSessionStream(as("agent://a"))._unsafeUnwrap();
    await stream.push(frame({ envelope: proposalEnvelope(id, "agent://a", "p1", "m1") }));
    await stream.push(frame({ envelope: voteEnvelope(id, "agent://a") }));
    const [only] = await take(stream.outputs, 1);
    expect(only?.kind === "envelope" && only.envelope.messageType).toBe("Vote");
  });

  it("drops a consumer that falls behind with SUBSCRIBER_LAGGED", async () => {
    const { runtime, as } = harness({ limits: { sessionStreamBuffer: 3 } });
    const id = sessionId();
    await accepted(runtime, startEnvelope(id, "agent://a"));
    const stream = runtime.openSessionStream(as("agent://a"))._unsafeUnwrap();
    await stream.push(frame({ subscribeSessionId: id, afterSequence: 1n }));
    for (let i = 0; i < 5; i++) await accepted(runtime, proposalEnvelope(id, "agent://a", `p${i}`));
    await expect(take(stream.outputs, 10)).rejects.toSatisfy(
      (e: unknown) => e instanceof MacpStreamError && e.error.code === ErrorCode.SUBSCRIBER_LAGGED,
    );
  });

  it("ends cleanly on half-close and on abort", async () => {
    const { runtime, id, as } = await openSession();
    const stream = runtime.openSessionStream(as("agent://a"))._unsafeUnwrap();
    await stream.push(frame({ subscribeSessionId: id }));
    stream.end();
    expect(await take(stream.outputs, 10)).toHaveLength(2);
    const controller = new AbortController();
    const aborted = runtime.openSessionStream(as("agent://a"), controller.signal)._unsafeUnwrap();
    controller.abort();
    expect(await take(aborted.outputs, 1)).toEqual([]);
  });
});

describe("watches", () => {
  it("WatchSessions starts with one CREATED per session, then lifecycle events", async () => {
    const { runtime, id, as } = await openSession();
    const events = runtime.watchSessions(as("agent://w"))._unsafeUnwrap();
    await runtime.suspendSession(id, "", as("agent://a"));
    await runtime.resumeSession(id, "", as("agent://a"));
    const got = await take(events, 3);
    expect(got.map((e) => e.eventType)).toEqual([1, 4, 5]);
    expect(runtime.watchSessions({ unauthenticated: "x" })._unsafeUnwrapErr().code).toBe(
      ErrorCode.UNAUTHENTICATED,
    );
    expect(runtime.watchSignals({ unauthenticated: "x" })._unsafeUnwrapErr().code).toBe(
      ErrorCode.UNAUTHENTICATED,
    );
  });

  it("WatchModeRegistry and WatchRoots send an initial hint", async () => {
    const { runtime, as } = harness();
    const modes = runtime.watchModeRegistry();
    const roots = await take(runtime.watchRoots(), 1);
    expect(roots).toHaveLength(1);
    runtime.registerExtMode(
      {
        $typeName: "macp.v1.ModeDescriptor",
        mode: "ext.vote.v1",
        modeVersion: "1.0.0",
        title: "",
        description: "",
        determinismClass: "",
        participantModel: "",
        messageTypes: ["Commitment"],
        terminalMessageTypes: ["Commitment"],
        schemaUris: {},
      },
      as("agent://admin"),
    );
    const hints = await take(modes, 2);
    expect(hints.map((h) => h.registry)).toEqual(["modes", "modes"]);
  });

  it("WatchPolicies sends the full list now and after every change", async () => {
    const { runtime, as } = harness();
    const policies = runtime.watchPolicies();
    runtime.registerPolicy(
      {
        $typeName: "macp.v1.PolicyDescriptor",
        policyId: "policy.test.one",
        mode: "*",
        description: "one",
        rules: "{}",
        schemaVersion: 1,
        registeredAtUnixMs: 0n,
      },
      as("agent://admin"),
    );
    const snapshots = await take(policies, 2);
    expect(snapshots.map((s) => s.descriptors.map((d) => d.policyId))).toEqual([
      ["policy.default"],
      ["policy.default", "policy.test.one"],
    ]);
    expect(snapshots[1]?.descriptors[1]?.registeredAtUnixMs).toBeGreaterThan(0n);
  });
});

describe("registries over the runtime", () => {
  it("requires registry rights and a descriptor", () => {
    const { runtime } = harness();
    const plain = createIdentity({ sender: "agent://a" });
    expect(runtime.registerExtMode(undefined, plain)._unsafeUnwrapErr().code).toBe(
      ErrorCode.FORBIDDEN,
    );
    expect(
      runtime.promoteMode("ext.multi_round.v1", "", { unauthenticated: "x" })._unsafeUnwrapErr()
        .code,
    ).toBe(ErrorCode.UNAUTHENTICATED);
    const admin = createIdentity({ sender: "agent://admin", canManageModeRegistry: true });
    expect(runtime.registerExtMode(undefined, admin)._unsafeUnwrapErr().code).toBe(
      ErrorCode.INVALID_REQUEST,
    );
    expect(runtime.registerPolicy(undefined, admin)._unsafeUnwrapErr().code).toBe(
      ErrorCode.INVALID_REQUEST,
    );
    expect(runtime.unregisterExtMode("macp.mode.decision.v1", admin)._unsafeUnwrap().ok).toBe(
      false,
    );
  });

  it("answers RegisterPolicy for rules nested 3,000 levels deep with ok:false INVALID_POLICY_DEFINITION", () => {
    const { runtime, as } = harness();
    const depth = 3000;
    const outcome = runtime.registerPolicy(
      {
        $typeName: "macp.v1.PolicyDescriptor",
        policyId: "policy.test.deep",
        mode: "macp.mode.decision.v1",
        description: "deep",
        rules: `{"voting":${'{"n":'.repeat(depth)}1${"}".repeat(depth)}}`,
        schemaVersion: 1,
        registeredAtUnixMs: 0n,
      },
      as("agent://admin"),
    );
    const answer = outcome._unsafeUnwrap();
    expect(answer.ok).toBe(false);
    expect(answer.error).toMatch(/^INVALID_POLICY_DEFINITION: rules nest deeper than/);
    expect(runtime.getPolicy("policy.test.deep", as("agent://admin")).isErr()).toBe(true);
  });

  it("keeps a directory-loaded policy registry read-only, before authentication", () => {
    const { runtime } = harness({ policyRegistryReadOnly: true });
    expect(
      runtime.unregisterPolicy("policy.x", { unauthenticated: "x" })._unsafeUnwrapErr().code,
    ).toBe(ErrorCode.READ_ONLY);
  });

  it("answers GetPolicy for unknown ids with NOT_FOUND and lists by mode", () => {
    const { runtime, as } = harness();
    expect(runtime.getPolicy("policy.nope", as("a"))._unsafeUnwrapErr().code).toBe(
      ErrorCode.NOT_FOUND,
    );
    expect(runtime.getPolicy("policy.default", as("a"))._unsafeUnwrap().mode).toBe("*");
    expect(
      runtime.listPolicies("macp.mode.task.v1", as("a"))._unsafeUnwrap().descriptors,
    ).toHaveLength(1);
    expect(runtime.listPolicies("", { unauthenticated: "x" })._unsafeUnwrapErr().code).toBe(
      ErrorCode.UNAUTHENTICATED,
    );
  });
});
