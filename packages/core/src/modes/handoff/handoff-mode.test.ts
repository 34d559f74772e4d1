import { fromBinary } from "@bufbuild/protobuf";
import { handoff } from "@macp/proto";
import { describe, expect, it } from "vitest";
import {
  commitment,
  encode,
  envelope,
  ModeDriver,
  outcome,
  session,
  startPayload,
  withPolicy,
} from "../mode-test-support.js";
import { type HandoffState, handoffMode } from "./handoff-mode.js";

const OWNER = "agent://owner";
const TARGET = "agent://target";
const OTHER = "agent://other";
const view = session({
  mode: "macp.mode.handoff.v1",
  initiator: OWNER,
  participants: [OWNER, TARGET, OTHER],
});
const TIMEOUT = 5_000;
const timed = withPolicy(view, { acceptance: { implicit_accept_timeout_ms: TIMEOUT } });

const offer = (handoffId: string, targetParticipant = TARGET) =>
  encode(handoff.HandoffOfferPayloadSchema, {
    handoffId,
    targetParticipant,
    scope: "support",
    reason: "escalate",
  });
const context = (handoffId: string, text = "late context") =>
  encode(handoff.HandoffContextPayloadSchema, {
    handoffId,
    contentType: "text/plain",
    context: new TextEncoder().encode(text),
  });
const acceptOffer = (handoffId: string, acceptedBy = "", implicit = false) =>
  encode(handoff.HandoffAcceptPayloadSchema, { handoffId, acceptedBy, reason: "ready", implicit });
const declineOffer = (handoffId: string, declinedBy = "") =>
  encode(handoff.HandoffDeclinePayloadSchema, { handoffId, declinedBy, reason: "busy" });

function driver(sessionView = view): ModeDriver<HandoffState> {
  return new ModeDriver(handoffMode, sessionView);
}

describe("handoff mode: SessionStart", () => {
  it("needs two participants with the initiator among them", () => {
    const one = session({ mode: "macp.mode.handoff.v1", initiator: OWNER, participants: [OWNER] });
    expect(outcome(handoffMode.onSessionStart(one, startPayload(one)))).toBe("INVALID_ENVELOPE");
    const outside = session({ initiator: OWNER, participants: [TARGET, OTHER] });
    expect(outcome(handoffMode.onSessionStart(outside, startPayload(outside)))).toBe(
      "INVALID_ENVELOPE",
    );
    expect(driver().text()).toBe('{"offers":{},"contexts":{}}');
  });
});

describe("handoff mode: HandoffOffer", () => {
  it("only the initiator offers", () => {
    expect(outcome(driver().send("HandoffOffer", TARGET, offer("h1", OTHER)))).toBe("FORBIDDEN");
  });

  it("rejects an empty id, an empty target, a reused id, a non-participant and the sender itself", () => {
    const d = driver();
    expect(outcome(d.send("HandoffOffer", OWNER, offer("")))).toBe("INVALID_ENVELOPE");
    expect(outcome(d.send("HandoffOffer", OWNER, offer("h1", "")))).toBe("INVALID_ENVELOPE");
    expect(outcome(d.send("HandoffOffer", OWNER, offer("h1", "agent://stranger")))).toBe(
      "INVALID_ENVELOPE",
    );
    expect(outcome(d.send("HandoffOffer", OWNER, offer("h1", OWNER)))).toBe("INVALID_ENVELOPE");
    expect(outcome(d.send("HandoffOffer", OWNER, offer("h1")))).toBe("ok");
    d.send("HandoffDecline", TARGET, declineOffer("h1"));
    expect(outcome(d.send("HandoffOffer", OWNER, offer("h1")))).toBe("INVALID_ENVELOPE");
  });

  it("refuses a second offer while one is pending, and any offer after an accept", () => {
    const d = driver();
    d.send("HandoffOffer", OWNER, offer("h1"));
    expect(outcome(d.send("HandoffOffer", OWNER, offer("h2", OTHER)))).toBe("INVALID_ENVELOPE");
    d.send("HandoffAccept", TARGET, acceptOffer("h1"));
    expect(outcome(d.send("HandoffOffer", OWNER, offer("h2", OTHER)))).toBe("INVALID_ENVELOPE");
  });

  it("allows a new offer after a decline, even to the same target", () => {
    const d = driver();
    d.send("HandoffOffer", OWNER, offer("h1"));
    d.send("HandoffDecline", TARGET, declineOffer("h1"));
    expect(outcome(d.send("HandoffOffer", OWNER, offer("h2")))).toBe("ok");
  });

  it("records the acceptance clock as offered_at_ms, not the envelope timestamp", () => {
    const d = driver();
    const message = envelope(view, "HandoffOffer", OWNER, offer("h1"));
    message.timestampUnixMs = 999_999_999n;
    d.sendEnvelope(message, { acceptedAtMs: 4_242 });
    expect(d.state.offers.get("h1")?.offeredAtMs).toBe(4_242);
  });
});

describe("handoff mode: HandoffContext", () => {
  it("rejects an unknown handoff and refuses anyone but the offerer", () => {
    const d = driver();
    expect(outcome(d.send("HandoffContext", OWNER, context("h1")))).toBe("INVALID_ENVELOPE");
    d.send("HandoffOffer", OWNER, offer("h1"));
    expect(outcome(d.send("HandoffContext", TARGET, context("h1")))).toBe("FORBIDDEN");
    expect(outcome(d.send("HandoffContext", "agent://outsider", context("h1")))).toBe("FORBIDDEN");
  });

  it("handoff_reject_paths: accept before offer, then late context is accepted", () => {
    const d = driver();
    expect(outcome(d.send("HandoffAccept", TARGET, acceptOffer("h1")))).toBe("INVALID_ENVELOPE");
    expect(outcome(d.send("HandoffOffer", OWNER, offer("h1")))).toBe("ok");
    expect(outcome(d.send("HandoffAccept", TARGET, acceptOffer("h1")))).toBe("ok");
    expect(outcome(d.send("HandoffContext", OWNER, context("h1")))).toBe("ok");
    expect(d.text()).toBe(
      '{"offers":{"h1":{"handoff_id":"h1","target_participant":"agent://target","scope":"support","reason":"escalate","offered_by":"agent://owner","disposition":"Accepted","accepted_by":"agent://target","declined_by":null,"outcome_reason":"ready","offered_at_ms":1000}},"contexts":{"h1":[{"content_type":"text/plain","context":[108,97,116,101,32,99,111,110,116,101,120,116],"sender":"agent://owner"}]}}',
    );
  });
});

describe("handoff mode: HandoffAccept and HandoffDecline", () => {
  it("only the target answers, naming itself if it names anyone", () => {
    const d = driver();
    d.send("HandoffOffer", OWNER, offer("h1"));
    expect(outcome(d.send("HandoffAccept", OTHER, acceptOffer("h1")))).toBe("FORBIDDEN");
    expect(outcome(d.send("HandoffDecline", OTHER, declineOffer("h1")))).toBe("FORBIDDEN");
    expect(outcome(d.send("HandoffAccept", TARGET, acceptOffer("h1", OTHER)))).toBe(
      "INVALID_ENVELOPE",
    );
    expect(outcome(d.send("HandoffDecline", TARGET, declineOffer("h1", OTHER)))).toBe(
      "INVALID_ENVELOPE",
    );
    expect(outcome(d.send("HandoffAccept", TARGET, acceptOffer("h9")))).toBe("INVALID_ENVELOPE");
  });

  it("an answered offer cannot be answered again", () => {
    const d = driver();
    d.send("HandoffOffer", OWNER, offer("h1"));
    expect(outcome(d.send("HandoffDecline", TARGET, declineOffer("h1", TARGET)))).toBe("ok");
    expect(outcome(d.send("HandoffAccept", TARGET, acceptOffer("h1")))).toBe("INVALID_ENVELOPE");
    expect(outcome(d.send("HandoffDecline", TARGET, declineOffer("h1")))).toBe("INVALID_ENVELOPE");
    expect(d.json()).toMatchObject({
      offers: {
        h1: {
          disposition: "Declined",
          declined_by: TARGET,
          accepted_by: null,
          outcome_reason: "busy",
        },
      },
    });
  });

  it("refuses a client accept that claims to be implicit", () => {
    const d = driver(timed);
    d.send("HandoffOffer", OWNER, offer("h1"), { acceptedAtMs: 1_000 });
    const claimed = acceptOffer("h1", TARGET, true);
    expect(outcome(d.send("HandoffAccept", TARGET, claimed, { acceptedAtMs: 99_000 }))).toBe(
      "INVALID_ENVELOPE",
    );
  });

  it("rejects unknown message types from participants", () => {
    expect(outcome(driver().send("HandoffPing", TARGET, new Uint8Array()))).toBe(
      "INVALID_ENVELOPE",
    );
  });
});

describe("handoff mode: Commitment", () => {
  it("is not ready while every offer is pending", () => {
    const d = driver();
    const commit = commitment(view, { action: "handoff.accepted" });
    expect(outcome(d.send("Commitment", OWNER, commit))).toBe("INVALID_ENVELOPE");
    d.send("HandoffOffer", OWNER, offer("h1"));
    expect(outcome(d.send("Commitment", OWNER, commit))).toBe("INVALID_ENVELOPE");
    expect(outcome(d.send("Commitment", TARGET, commit))).toBe("FORBIDDEN");
  });

  it("is ready with h1 declined and h2 pending", () => {
    const d = driver();
    d.send("HandoffOffer", OWNER, offer("h1"));
    d.send("HandoffDecline", TARGET, declineOffer("h1"));
    d.send("HandoffOffer", OWNER, offer("h2", OTHER));
    const commit = commitment(view, { action: "handoff.declined", outcomePositive: false });
    expect(outcome(d.send("Commitment", OWNER, commit))).toBe("ok");
  });

  it("handoff_happy_path and handoff_negative_outcome resolve with the payload", () => {
    const d = driver();
    d.send("HandoffOffer", OWNER, offer("h1"));
    d.send("HandoffAccept", TARGET, acceptOffer("h1"));
    const commit = commitment(view, { action: "handoff.accepted", outcomePositive: true });
    expect(outcome(d.send("Commitment", OWNER, commit))).toBe("ok");
    expect(d.resolution).toEqual(commit);

    const e = driver();
    e.send("HandoffOffer", OWNER, offer("h1"));
    e.send("HandoffDecline", TARGET, declineOffer("h1"));
    const decline = commitment(view, { action: "handoff.declined", outcomePositive: false });
    expect(outcome(e.send("Commitment", OWNER, decline))).toBe("ok");
  });

  it("is denied when the bound policy has an unsupported schema version", () => {
    const v3 = withPolicy(view, {}, { schemaVersion: 3 });
    const d = driver(v3);
    d.send("HandoffOffer", OWNER, offer("h1"));
    d.send("HandoffAccept", TARGET, acceptOffer("h1"));
    expect(
      outcome(d.send("Commitment", OWNER, commitment(v3, { action: "handoff.accepted" }))),
    ).toBe("POLICY_DENIED");
  });
});

describe("handoff mode: implicit accept via due messages", () => {
  it("has nothing due without an implicit_accept_timeout_ms", () => {
    const d = driver();
    d.send("HandoffOffer", OWNER, offer("h1"), { acceptedAtMs: 1_000 });
    expect(handoffMode.nextDueAt?.(view, d.state)).toBeUndefined();
    expect(handoffMode.dueMessages?.(view, d.state, 10_000_000)).toEqual([]);
  });

  it("schedules the synthetic accept at offered_at_ms + timeout (inclusive)", () => {
    const d = driver(timed);
    expect(handoffMode.nextDueAt?.(timed, d.state)).toBeUndefined();
    d.send("HandoffOffer", OWNER, offer("h1"), { acceptedAtMs: 1_000 });
    expect(handoffMode.nextDueAt?.(timed, d.state)).toBe(6_000);
    expect(handoffMode.dueMessages?.(timed, d.state, 5_999)).toEqual([]);
    const due = handoffMode.dueMessages?.(timed, d.state, 6_000) ?? [];
    expect(due).toHaveLength(1);
    const [message] = due;
    expect(message?.messageType).toBe("HandoffAccept");
    expect(message?.messageId).toBe("implicit-accept:h1");
    expect(message?.sender).toBe(TARGET);
    const payload = fromBinary(
      handoff.HandoffAcceptPayloadSchema,
      message?.payload ?? new Uint8Array(),
    );
    expect(payload).toMatchObject({
      handoffId: "h1",
      acceptedBy: TARGET,
      reason: "implicit accept (timeout)",
      implicit: true,
    });
  });

  it("accepts the synthetic message the runtime injects, then nothing more is due", () => {
    const d = driver(timed);
    d.send("HandoffOffer", OWNER, offer("h1"), { acceptedAtMs: 1_000 });
    const [message] = handoffMode.dueMessages?.(timed, d.state, 6_000) ?? [];
    if (message === undefined) throw new Error("expected a due message");
    const synthetic = envelope(timed, message.messageType, message.sender, message.payload);
    synthetic.messageId = message.messageId;
    expect(outcome(d.sendEnvelope(synthetic, { acceptedAtMs: 6_000, synthetic: true }))).toBe("ok");
    expect(d.json()).toMatchObject({
      offers: {
        h1: {
          disposition: "Accepted",
          accepted_by: TARGET,
          outcome_reason: "implicit accept (timeout)",
          offered_at_ms: 1_000,
        },
      },
    });
    expect(handoffMode.nextDueAt?.(timed, d.state)).toBeUndefined();
    const commit = commitment(timed, { action: "handoff.accepted" });
    expect(outcome(d.send("Commitment", OWNER, commit, { acceptedAtMs: 7_000 }))).toBe("ok");
  });

  it("refuses a synthetic implicit accept that is not due yet or whose offer was answered", () => {
    const d = driver(timed);
    d.send("HandoffOffer", OWNER, offer("h1"), { acceptedAtMs: 1_000 });
    const early = acceptOffer("h1", TARGET, true);
    expect(
      outcome(d.send("HandoffAccept", TARGET, early, { acceptedAtMs: 5_999, synthetic: true })),
    ).toBe("INVALID_ENVELOPE");
    d.send("HandoffDecline", TARGET, declineOffer("h1"), { acceptedAtMs: 5_500 });
    expect(
      outcome(d.send("HandoffAccept", TARGET, early, { acceptedAtMs: 6_000, synthetic: true })),
    ).toBe("INVALID_ENVELOPE");
  });

  it("never schedules offers without an acceptance-clock time", () => {
    const d = driver(timed);
    d.send("HandoffOffer", OWNER, offer("h1"), { acceptedAtMs: 0 });
    expect(handoffMode.nextDueAt?.(timed, d.state)).toBeUndefined();
    expect(handoffMode.dueMessages?.(timed, d.state, 1_000_000)).toEqual([]);
  });
});

describe("handoff mode: lazy implicit accept at Commitment", () => {
  it("applies only once the acceptance clock reaches the timeout, whatever the envelope says", () => {
    const d = driver(timed);
    d.send("HandoffOffer", OWNER, offer("h1"), { acceptedAtMs: 1_000 });
    const commit = commitment(timed, { action: "handoff.accepted" });
    // A forged future timestamp does not make the offer due.
    const forged = envelope(timed, "Commitment", OWNER, commit);
    forged.timestampUnixMs = 10_000_000n;
    expect(outcome(d.sendEnvelope(forged, { acceptedAtMs: 5_999 }))).toBe("INVALID_ENVELOPE");
    expect(d.state.offers.get("h1")?.disposition).toBe("Offered");
    // A back-dated timestamp does not stop it either.
    const backdated = envelope(timed, "Commitment", OWNER, commit);
    backdated.timestampUnixMs = 0n;
    expect(outcome(d.sendEnvelope(backdated, { acceptedAtMs: 6_000 }))).toBe("ok");
    expect(d.json()).toMatchObject({
      offers: {
        h1: {
          disposition: "Accepted",
          accepted_by: TARGET,
          outcome_reason: "implicit accept (timeout)",
        },
      },
    });
  });

  it("keeps the offer pending when the Commitment itself fails", () => {
    const d = driver(timed);
    d.send("HandoffOffer", OWNER, offer("h1"), { acceptedAtMs: 1_000 });
    const bad = commitment(timed, { action: "handoff.accepted", configurationVersion: "other" });
    expect(outcome(d.send("Commitment", OWNER, bad, { acceptedAtMs: 9_000 }))).toBe(
      "INVALID_ENVELOPE",
    );
    expect(d.state.offers.get("h1")?.disposition).toBe("Offered");
  });

  it("does nothing without the policy", () => {
    const d = driver();
    d.send("HandoffOffer", OWNER, offer("h1"), { acceptedAtMs: 1_000 });
    const commit = commitment(view, { action: "handoff.accepted" });
    expect(outcome(d.send("Commitment", OWNER, commit, { acceptedAtMs: 99_000_000 }))).toBe(
      "INVALID_ENVELOPE",
    );
  });
});
