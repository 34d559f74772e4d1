import { create, toBinary } from "@bufbuild/protobuf";
import { SessionState, SignalPayloadSchema } from "@macp/proto";
import { describe, expect, it } from "vitest";
import { ErrorCode } from "../errors.js";
import {
  accepted,
  commitmentEnvelope,
  envelope,
  harness,
  proposalEnvelope,
  refusal,
  sessionId,
  startEnvelope,
  startPayload,
  voteEnvelope,
} from "../testing/fixtures.js";

describe("session-scoped messages", () => {
  async function openDecision() {
    const h = harness();
    const id = sessionId();
    await accepted(
      h.runtime,
      startEnvelope(id, "agent://a", { participants: ["agent://a", "agent://b"] }),
    );
    return { ...h, id };
  }

  it("refuses unknown sessions with SESSION_NOT_FOUND", async () => {
    const { runtime } = harness();
    expect(await refusal(runtime, proposalEnvelope(sessionId(), "agent://a"))).toBe(
      ErrorCode.SESSION_NOT_FOUND,
    );
  });

  it("acks a repeated message_id as a duplicate with no effect", async () => {
    const { runtime, id } = await openDecision();
    const proposal = proposalEnvelope(id, "agent://a", "p1", "dup-1");
    await accepted(runtime, proposal);
    const again = await accepted(runtime, proposalEnvelope(id, "agent://a", "p2", "dup-1"));
    expect(again.duplicate).toBe(true);
    const snapshot = runtime.inspectSession(id)!;
    expect(snapshot.acceptedCount).toBe(2);
    expect(Object.keys((snapshot.modeState as { proposals: object }).proposals)).toEqual(["p1"]);
  });

  it("refuses a mode that differs from the session's", async () => {
    const { runtime, id } = await openDecision();
    const wrong = proposalEnvelope(id, "agent://a");
    wrong.mode = "macp.mode.task.v1";
    expect(await refusal(runtime, wrong)).toBe(ErrorCode.INVALID_ENVELOPE);
  });

  it("accepts at the deadline and expires just after it", async () => {
    const { runtime, clock, id, as } = await openDecision();
    clock.advance(60_000);
    await accepted(runtime, proposalEnvelope(id, "agent://a"));
    clock.advance(1);
    expect(await refusal(runtime, voteEnvelope(id, "agent://b"))).toBe(ErrorCode.SESSION_NOT_OPEN);
    const metadata = (await runtime.getSession(id, as("agent://a")))._unsafeUnwrap();
    expect(metadata.state).toBe(SessionState.EXPIRED);
  });

  it("refuses everything after the Commitment, except duplicates", async () => {
    const { runtime, id } = await openDecision();
    const proposal = proposalEnvelope(id, "agent://a");
    await accepted(runtime, proposal);
    await accepted(runtime, voteEnvelope(id, "agent://b"));
    const commit = await accepted(runtime, commitmentEnvelope(id, "agent://a"));
    expect(commit.sessionState).toBe(SessionState.RESOLVED);
    expect(await refusal(runtime, voteEnvelope(id, "agent://a"))).toBe(ErrorCode.SESSION_NOT_OPEN);
    expect((await accepted(runtime, proposal)).duplicate).toBe(true);
  });

  it("does not consume the message_id of a refused message", async () => {
    const { runtime, id } = await openDecision();
    const outsider = proposalEnvelope(id, "agent://outsider", "p1", "same-id");
    expect(await refusal(runtime, outsider)).toBe(ErrorCode.FORBIDDEN);
    const ack = await accepted(runtime, proposalEnvelope(id, "agent://a", "p1", "same-id"));
    expect(ack.duplicate).toBe(false);
  });

  it("answers a failed append with INTERNAL_ERROR and changes nothing", async () => {
    const { runtime, store, id } = await openDecision();
    store.failAppends("EIO");
    expect(await refusal(runtime, proposalEnvelope(id, "agent://a", "p1", "x1"))).toBe(
      ErrorCode.INTERNAL_ERROR,
    );
    store.failAppends(undefined);
    expect(runtime.inspectSession(id)?.acceptedCount).toBe(1);
    expect((await accepted(runtime, proposalEnvelope(id, "agent://a", "p1", "x1"))).duplicate).toBe(
      false,
    );
  });

  it("refuses messages of a mode unregistered after the session started", async () => {
    const { runtime, as } = harness();
    const admin = as("agent://admin");
    const registered = runtime.registerExtMode(
      {
        $typeName: "macp.v1.ModeDescriptor",
        mode: "ext.echo.v1",
        modeVersion: "1.0.0",
        title: "Echo",
        description: "test",
        determinismClass: "structural-only",
        participantModel: "peer",
        messageTypes: ["SessionStart", "Note", "Commitment"],
        terminalMessageTypes: ["Commitment"],
        schemaUris: {},
      },
      admin,
    );
    expect(registered._unsafeUnwrap()).toMatchObject({ ok: true });
    const id = sessionId();
    await accepted(
      runtime,
      startEnvelope(id, "agent://a", { mode: "ext.echo.v1", participants: [] }),
    );
    await accepted(
      runtime,
      envelope({ sessionId: id, sender: "agent://b", mode: "ext.echo.v1", messageType: "Note" }),
    );
    expect(runtime.unregisterExtMode("ext.echo.v1", admin)._unsafeUnwrap().ok).toBe(true);
    expect(
      await refusal(
        runtime,
        envelope({ sessionId: id, sender: "agent://b", mode: "ext.echo.v1", messageType: "Note" }),
      ),
    ).toBe(ErrorCode.MODE_NOT_SUPPORTED);
  });
});

describe("Signals and Progress", () => {
  it("accepts ambient signals, broadcasts them, and never touches sessions", async () => {
    const { runtime, as } = harness();
    const watch = runtime.watchSignals(as("agent://watcher"))._unsafeUnwrap();
    const iterator = watch[Symbol.asyncIterator]();
    const payload = toBinary(
      SignalPayloadSchema,
      create(SignalPayloadSchema, { signalType: "heartbeat" }),
    );
    const ack = await accepted(
      runtime,
      envelope({ messageType: "Signal", sessionId: "", mode: "", sender: "agent://a", payload }),
    );
    expect(ack.sessionState).toBe(SessionState.OPEN);
    const delivered = await iterator.next();
    expect(delivered.value?.messageType).toBe("Signal");
    const progress = envelope({
      messageType: "Progress",
      sessionId: "",
      mode: "",
      sender: "agent://a",
    });
    await accepted(runtime, progress);
    expect((await iterator.next()).value?.messageType).toBe("Progress");
  });

  it("refuses undecodable or typeless signal payloads", async () => {
    const { runtime } = harness();
    const blank = toBinary(SignalPayloadSchema, create(SignalPayloadSchema, { signalType: " " }));
    expect(
      await refusal(
        runtime,
        envelope({ messageType: "Signal", sessionId: "", mode: "", payload: blank }),
      ),
    ).toBe(ErrorCode.INVALID_ENVELOPE);
    expect(
      await refusal(
        runtime,
        envelope({
          messageType: "Progress",
          sessionId: "",
          mode: "",
          payload: new Uint8Array([0xff]),
        }),
      ),
    ).toBe(ErrorCode.INVALID_ENVELOPE);
  });

  it("sends session-scoped Progress to the signal bus, not into history", async () => {
    const { runtime } = harness();
    const id = sessionId();
    await accepted(runtime, startEnvelope(id, "agent://a"));
    await accepted(
      runtime,
      envelope({ messageType: "Progress", sessionId: id, sender: "agent://a" }),
    );
    expect(runtime.inspectSession(id)?.acceptedCount).toBe(1);
    expect(await runtime.readHistory(id)).toHaveLength(1);
  });

  it("does not deduplicate signals", async () => {
    const { runtime } = harness();
    const signal = envelope({
      messageType: "Signal",
      sessionId: "",
      mode: "",
      sender: "agent://a",
      messageId: "s",
    });
    expect((await accepted(runtime, signal)).duplicate).toBe(false);
    expect((await accepted(runtime, signal)).duplicate).toBe(false);
  });
});

describe("payload helpers", () => {
  it("builds a valid start payload", () => {
    expect(startPayload().length).toBeGreaterThan(0);
  });
});
