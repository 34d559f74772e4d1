import { quorum } from "@macp/proto";
import { describe, expect, it } from "vitest";
import {
  commitment,
  encode,
  ModeDriver,
  outcome,
  session,
  startPayload,
  withPolicy,
} from "../mode-test-support.js";
import { isQuorumReady, type QuorumState, quorumMode, requiredApprovals } from "./quorum-mode.js";

const COORD = "agent://coordinator";
const ALICE = "agent://alice";
const BOB = "agent://bob";
const CAROL = "agent://carol";
const view = session({
  mode: "macp.mode.quorum.v1",
  initiator: COORD,
  participants: [ALICE, BOB, CAROL],
});

const request = (requiredApprovals: number, requestId = "r1") =>
  encode(quorum.ApprovalRequestPayloadSchema, {
    requestId,
    action: "deploy",
    summary: "Deploy v2",
    requiredApprovals,
  });
const ballot = (reason: string, requestId = "r1") =>
  encode(quorum.ApprovePayloadSchema, { requestId, reason });

function driver(sessionView = view): ModeDriver<QuorumState> {
  return new ModeDriver(quorumMode, sessionView);
}

function fiveVoters(rules: Parameters<typeof withPolicy>[1]) {
  return withPolicy(
    session({
      mode: "macp.mode.quorum.v1",
      initiator: COORD,
      participants: ["agent://1", "agent://2", "agent://3", "agent://4", "agent://5"],
    }),
    rules,
  );
}

describe("quorum mode: SessionStart and ApprovalRequest", () => {
  it("rejects a session without participants and starts empty", () => {
    const empty = session({ participants: [] });
    expect(outcome(quorumMode.onSessionStart(empty, startPayload(empty)))).toBe("INVALID_ENVELOPE");
    expect(driver().text()).toBe('{"request":null,"ballots":{}}');
  });

  it("only the initiator requests, even when it is not a participant", () => {
    const d = driver();
    expect(outcome(d.send("ApprovalRequest", ALICE, request(2)))).toBe("FORBIDDEN");
    expect(outcome(d.send("ApprovalRequest", COORD, request(2)))).toBe("ok");
  });

  it("rejects required_approvals of 0 or above the participant count, an empty id, and a second request", () => {
    const d = driver();
    expect(outcome(d.send("ApprovalRequest", COORD, request(0)))).toBe("INVALID_ENVELOPE");
    expect(outcome(d.send("ApprovalRequest", COORD, request(4)))).toBe("INVALID_ENVELOPE");
    expect(outcome(d.send("ApprovalRequest", COORD, request(2, "")))).toBe("INVALID_ENVELOPE");
    expect(outcome(d.send("ApprovalRequest", COORD, request(3)))).toBe("ok");
    expect(outcome(d.send("ApprovalRequest", COORD, request(1, "r2")))).toBe("INVALID_ENVELOPE");
  });
});

describe("quorum mode: ballots", () => {
  it("rejects a ballot before the request or for another request", () => {
    const d = driver();
    expect(outcome(d.send("Approve", ALICE, ballot("lgtm")))).toBe("INVALID_ENVELOPE");
    d.send("ApprovalRequest", COORD, request(2));
    expect(outcome(d.send("Reject", ALICE, ballot("no", "r9")))).toBe("INVALID_ENVELOPE");
  });

  it("allows one ballot per voter across Approve, Reject and Abstain", () => {
    const d = driver();
    d.send("ApprovalRequest", COORD, request(2));
    expect(outcome(d.send("Abstain", ALICE, ballot("meh")))).toBe("ok");
    expect(outcome(d.send("Approve", ALICE, ballot("changed my mind")))).toBe("INVALID_ENVELOPE");
    expect(outcome(d.send("Reject", ALICE, ballot("no")))).toBe("INVALID_ENVELOPE");
  });

  it("refuses an initiator who is not a participant, and outsiders", () => {
    const d = driver();
    d.send("ApprovalRequest", COORD, request(2));
    expect(outcome(d.send("Approve", COORD, ballot("self")))).toBe("FORBIDDEN");
    expect(outcome(d.send("Approve", "agent://outsider", ballot("x")))).toBe("FORBIDDEN");
  });

  it("keeps taking ballots after the threshold is reached", () => {
    const d = driver();
    d.send("ApprovalRequest", COORD, request(1));
    d.send("Approve", ALICE, ballot("a"));
    expect(outcome(d.send("Reject", BOB, ballot("b")))).toBe("ok");
  });

  it("rejects unknown message types from participants", () => {
    expect(outcome(driver().send("Veto", ALICE, new Uint8Array()))).toBe("INVALID_ENVELOPE");
  });
});

describe("quorum mode: readiness and Commitment", () => {
  it("quorum_reject_paths: one approval of two with two voters left is not ready", () => {
    const d = driver();
    expect(outcome(d.send("Approve", ALICE, ballot("lgtm")))).toBe("INVALID_ENVELOPE");
    expect(outcome(d.send("ApprovalRequest", COORD, request(2)))).toBe("ok");
    expect(outcome(d.send("Approve", ALICE, ballot("lgtm")))).toBe("ok");
    const commit = commitment(view, { action: "quorum.approved" });
    expect(outcome(d.send("Commitment", COORD, commit))).toBe("INVALID_ENVELOPE");
    expect(d.resolution).toBeUndefined();
  });

  it("quorum_happy_path: resolves with the payload and keeps the documented state", () => {
    const d = driver();
    d.send("ApprovalRequest", COORD, request(2));
    d.send("Approve", ALICE, ballot("lgtm"));
    d.send("Approve", BOB, ballot("ship it"));
    const commit = commitment(view, { action: "quorum.approved", outcomePositive: true });
    expect(outcome(d.send("Commitment", ALICE, commit))).toBe("FORBIDDEN");
    expect(outcome(d.send("Commitment", COORD, commit))).toBe("ok");
    expect(d.resolution).toEqual(commit);
    expect(d.text()).toBe(
      '{"request":{"request_id":"r1","action":"deploy","summary":"Deploy v2","details":[],"required_approvals":2,"requested_by":"agent://coordinator"},"ballots":{"agent://alice":{"request_id":"r1","choice":"Approve","sender":"agent://alice","reason":"lgtm"},"agent://bob":{"request_id":"r1","choice":"Approve","sender":"agent://bob","reason":"ship it"}}}',
    );
  });

  it("quorum_negative_outcome: reject plus abstain makes two approvals unreachable", () => {
    const d = driver();
    d.send("ApprovalRequest", COORD, request(2));
    d.send("Reject", ALICE, ballot("no"));
    d.send("Abstain", BOB, ballot("pass"));
    expect(d.json()).toMatchObject({
      ballots: { [ALICE]: { choice: "Reject" }, [BOB]: { choice: "Abstain" } },
    });
    const decline = commitment(view, { action: "quorum.rejected", outcomePositive: false });
    expect(outcome(d.send("Commitment", COORD, decline))).toBe("ok");
  });

  it("all abstaining is ready for a negative outcome", () => {
    const d = driver();
    d.send("ApprovalRequest", COORD, request(1));
    for (const voter of [ALICE, BOB, CAROL]) d.send("Abstain", voter, ballot("pass"));
    const decline = commitment(view, { action: "quorum.rejected", outcomePositive: false });
    expect(outcome(d.send("Commitment", COORD, decline))).toBe("ok");
  });

  it("does not cross-check the direction under the default policy", () => {
    const d = driver();
    d.send("ApprovalRequest", COORD, request(3));
    d.send("Reject", ALICE, ballot("no"));
    const positive = commitment(view, { action: "quorum.approved", outcomePositive: true });
    expect(outcome(d.send("Commitment", COORD, positive))).toBe("ok");
  });

  it("a policy n_of_m of 1 overrides a requested 3", () => {
    const policyView = withPolicy(view, { threshold: { type: "n_of_m", value: 1 } });
    const d = driver(policyView);
    d.send("ApprovalRequest", COORD, request(3));
    expect(isQuorumReady(policyView, d.state)).toBe(false);
    d.send("Approve", ALICE, ballot("ok"));
    expect(isQuorumReady(policyView, d.state)).toBe(true);
    const positive = commitment(policyView, { action: "quorum.approved" });
    expect(outcome(d.send("Commitment", COORD, positive))).toBe("ok");
  });

  it("percentage 60 with five participants requires three approvals", () => {
    const policyView = fiveVoters({ threshold: { type: "percentage", value: 60 } });
    const d = driver(policyView);
    d.send("ApprovalRequest", COORD, request(1));
    const request1 = d.state.request;
    if (request1 === null) throw new Error("expected a request");
    expect(requiredApprovals(policyView, request1)).toBe(3);
  });

  it("threshold 3 with two approvals and one abstention denies a positive outcome only", () => {
    const policyView = withPolicy(view, { threshold: { type: "n_of_m", value: 3 } });
    const d = driver(policyView);
    d.send("ApprovalRequest", COORD, request(2));
    d.send("Approve", ALICE, ballot("a"));
    d.send("Approve", BOB, ballot("b"));
    d.send("Abstain", CAROL, ballot("c"));
    const positive = commitment(policyView, { action: "quorum.approved", outcomePositive: true });
    const denied = d.send("Commitment", COORD, positive);
    expect(outcome(denied)).toBe("POLICY_DENIED");
    expect(denied._unsafeUnwrapErr().reasons?.[0]).toContain("below the policy threshold of 3");
    const negative = commitment(policyView, { action: "quorum.rejected", outcomePositive: false });
    expect(outcome(d.send("Commitment", COORD, negative))).toBe("ok");
  });

  it("readiness truncates a fractional count threshold", () => {
    const policyView = withPolicy(view, { threshold: { type: "n_of_m", value: 1.7 } });
    const d = driver(policyView);
    d.send("ApprovalRequest", COORD, request(3));
    const request1 = d.state.request;
    if (request1 === null) throw new Error("expected a request");
    expect(requiredApprovals(policyView, request1)).toBe(1);
  });
});
