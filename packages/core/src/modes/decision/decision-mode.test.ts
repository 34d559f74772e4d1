import { decision } from "@macp/proto";
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
import { type DecisionState, decisionMode } from "./decision-mode.js";

const ORCH = "agent://orchestrator";
const A = "agent://a";
const B = "agent://b";
const view = session({
  mode: "macp.mode.decision.v1",
  initiator: ORCH,
  participants: [ORCH, A, B],
});

const proposal = (proposalId: string, option = "deploy", rationale = "ready") =>
  encode(decision.ProposalPayloadSchema, { proposalId, option, rationale });
const evaluation = (proposalId: string, recommendation: string, confidence = 0.5) =>
  encode(decision.EvaluationPayloadSchema, { proposalId, recommendation, confidence, reason: "r" });
const objection = (proposalId: string, severity: string) =>
  encode(decision.ObjectionPayloadSchema, { proposalId, reason: "no", severity });
const vote = (proposalId: string, choice: string, reason = "good") =>
  encode(decision.VotePayloadSchema, { proposalId, vote: choice, reason });

function driver(sessionView = view): ModeDriver<DecisionState> {
  return new ModeDriver(decisionMode, sessionView);
}

describe("decision mode: SessionStart", () => {
  it("rejects a session without participants", () => {
    const empty = session({ participants: [] });
    expect(outcome(decisionMode.onSessionStart(empty, startPayload(empty)))).toBe(
      "INVALID_ENVELOPE",
    );
  });

  it("starts with the empty state of modes.md §2.3", () => {
    expect(driver().text()).toBe(
      '{"proposals":{},"evaluations":[],"objections":[],"votes":{},"phase":"Proposal"}',
    );
  });
});

describe("decision mode: authorization", () => {
  it("refuses Proposal, Evaluation, Objection and Vote from a non-participant", () => {
    const d = driver();
    expect(outcome(d.send("Proposal", "agent://outsider", proposal("p1")))).toBe("FORBIDDEN");
    d.send("Proposal", ORCH, proposal("p1"));
    expect(outcome(d.send("Evaluation", "agent://outsider", evaluation("p1", "APPROVE")))).toBe(
      "FORBIDDEN",
    );
    expect(outcome(d.send("Objection", "agent://outsider", objection("p1", "low")))).toBe(
      "FORBIDDEN",
    );
    expect(outcome(d.send("Vote", "agent://outsider", vote("p1", "APPROVE")))).toBe("FORBIDDEN");
  });

  it("lets an initiator outside the participants commit but not propose", () => {
    const outside = session({ initiator: ORCH, participants: [A, B] });
    const d = driver(outside);
    expect(outcome(d.send("Proposal", ORCH, proposal("p1")))).toBe("FORBIDDEN");
    expect(outcome(d.send("Proposal", A, proposal("p1")))).toBe("ok");
    const commit = commitment(outside, { action: "decision.selected", outcomePositive: true });
    expect(outcome(d.send("Commitment", ORCH, commit))).toBe("ok");
  });

  it("answers unknown message types with FORBIDDEN, even with a garbage payload", () => {
    expect(outcome(driver().send("Bogus", A, new Uint8Array([0xff])))).toBe("FORBIDDEN");
  });

  it("refuses a Commitment from a participant under the default policy", () => {
    const d = driver();
    d.send("Proposal", ORCH, proposal("p1"));
    expect(outcome(d.send("Commitment", A, commitment(view)))).toBe("FORBIDDEN");
  });
});

describe("decision mode: Proposal", () => {
  it("rejects an undecodable payload", () => {
    expect(outcome(driver().send("Proposal", A, new Uint8Array([0x0a, 0x09])))).toBe(
      "INVALID_ENVELOPE",
    );
  });

  it("rejects a blank proposal_id or option", () => {
    const d = driver();
    expect(outcome(d.send("Proposal", A, proposal(" ")))).toBe("INVALID_ENVELOPE");
    expect(outcome(d.send("Proposal", A, proposal("p1", "  ")))).toBe("INVALID_ENVELOPE");
  });

  it("rejects a duplicate proposal_id", () => {
    const d = driver();
    expect(outcome(d.send("Proposal", A, proposal("p1")))).toBe("ok");
    expect(outcome(d.send("Proposal", B, proposal("p1", "other")))).toBe("INVALID_ENVELOPE");
  });

  it("moves to Evaluation on the first proposal and does not keep supporting_data", () => {
    const d = driver();
    const payload = encode(decision.ProposalPayloadSchema, {
      proposalId: "p1",
      option: "o",
      rationale: "r",
      supportingData: new Uint8Array([1, 2, 3]),
    });
    expect(outcome(d.send("Proposal", A, payload))).toBe("ok");
    expect(d.json()).toMatchObject({
      proposals: { p1: { proposal_id: "p1", option: "o", rationale: "r", sender: A } },
      phase: "Evaluation",
    });
    expect(d.text()).not.toContain("supporting");
  });

  it("rejects a proposal once voting has begun", () => {
    const d = driver();
    d.send("Proposal", A, proposal("p1"));
    d.send("Vote", A, vote("p1", "APPROVE"));
    expect(outcome(d.send("Proposal", B, proposal("p2")))).toBe("INVALID_ENVELOPE");
  });
});

describe("decision mode: Evaluation", () => {
  it("accepts confidence 1.0 and 0.0, rejects 1.5 and -0.1", () => {
    const d = driver();
    d.send("Proposal", A, proposal("p1"));
    expect(outcome(d.send("Evaluation", A, evaluation("p1", "APPROVE", 1.0)))).toBe("ok");
    expect(outcome(d.send("Evaluation", A, evaluation("p1", "APPROVE", 0.0)))).toBe("ok");
    expect(outcome(d.send("Evaluation", A, evaluation("p1", "APPROVE", 1.5)))).toBe(
      "INVALID_ENVELOPE",
    );
    expect(outcome(d.send("Evaluation", A, evaluation("p1", "APPROVE", -0.1)))).toBe(
      "INVALID_ENVELOPE",
    );
    expect(outcome(d.send("Evaluation", A, evaluation("p1", "APPROVE", Number.NaN)))).toBe(
      "INVALID_ENVELOPE",
    );
  });

  it("compares the recommendation case-insensitively and stores it upper-cased", () => {
    const d = driver();
    d.send("Proposal", A, proposal("p1"));
    expect(outcome(d.send("Evaluation", B, evaluation("p1", "review")))).toBe("ok");
    expect(outcome(d.send("Evaluation", B, evaluation("p1", "Block")))).toBe("ok");
    expect(outcome(d.send("Evaluation", B, evaluation("p1", "MAYBE")))).toBe("INVALID_ENVELOPE");
    expect(d.json()).toMatchObject({
      evaluations: [{ recommendation: "REVIEW" }, { recommendation: "BLOCK" }],
    });
  });

  it("rejects an evaluation before any proposal, on an unknown proposal, or after a vote", () => {
    const d = driver();
    expect(outcome(d.send("Evaluation", A, evaluation("p1", "APPROVE")))).toBe("INVALID_ENVELOPE");
    d.send("Proposal", A, proposal("p1"));
    expect(outcome(d.send("Evaluation", A, evaluation("p9", "APPROVE")))).toBe("INVALID_ENVELOPE");
    d.send("Vote", A, vote("p1", "APPROVE"));
    expect(outcome(d.send("Evaluation", B, evaluation("p1", "APPROVE")))).toBe("INVALID_ENVELOPE");
  });

  it("keeps several evaluations from the same sender", () => {
    const d = driver();
    d.send("Proposal", A, proposal("p1"));
    d.send("Evaluation", B, evaluation("p1", "APPROVE", 0.25));
    d.send("Evaluation", B, evaluation("p1", "REJECT", 0.75));
    expect(d.json()).toMatchObject({
      evaluations: [
        { proposal_id: "p1", recommendation: "APPROVE", confidence: 0.25, reason: "r", sender: B },
        { proposal_id: "p1", recommendation: "REJECT", confidence: 0.75, reason: "r", sender: B },
      ],
    });
  });
});

describe("decision mode: Objection", () => {
  it('stores "CRITICAL" as "critical" and an empty severity as "medium"', () => {
    const d = driver();
    d.send("Proposal", A, proposal("p1"));
    expect(outcome(d.send("Objection", B, objection("p1", "CRITICAL")))).toBe("ok");
    expect(outcome(d.send("Objection", B, objection("p1", "")))).toBe("ok");
    expect(d.json()).toMatchObject({
      objections: [
        { proposal_id: "p1", reason: "no", severity: "critical", sender: B },
        { proposal_id: "p1", reason: "no", severity: "medium", sender: B },
      ],
    });
  });

  it("rejects an unknown severity, an unknown proposal and objections after a vote", () => {
    const d = driver();
    expect(outcome(d.send("Objection", B, objection("p1", "low")))).toBe("INVALID_ENVELOPE");
    d.send("Proposal", A, proposal("p1"));
    expect(outcome(d.send("Objection", B, objection("p1", "severe")))).toBe("INVALID_ENVELOPE");
    expect(outcome(d.send("Objection", B, objection("p2", "low")))).toBe("INVALID_ENVELOPE");
    d.send("Vote", A, vote("p1", "APPROVE"));
    expect(outcome(d.send("Objection", B, objection("p1", "low")))).toBe("INVALID_ENVELOPE");
  });
});

describe("decision mode: Vote", () => {
  it("rejects a vote on an unknown proposal, or before any proposal", () => {
    const d = driver();
    expect(outcome(d.send("Vote", A, vote("p1", "APPROVE")))).toBe("INVALID_ENVELOPE");
    d.send("Proposal", A, proposal("p1"));
    expect(outcome(d.send("Vote", A, vote("nope", "APPROVE")))).toBe("INVALID_ENVELOPE");
  });

  it("rejects a vote that is not APPROVE/REJECT/ABSTAIN and upper-cases valid ones", () => {
    const d = driver();
    d.send("Proposal", A, proposal("p1"));
    expect(outcome(d.send("Vote", A, vote("p1", "YES")))).toBe("INVALID_ENVELOPE");
    expect(outcome(d.send("Vote", A, vote("p1", "abstain")))).toBe("ok");
    expect(d.json()).toMatchObject({ votes: { p1: { [A]: { vote: "ABSTAIN" } } } });
  });

  it("refuses a second vote on the same proposal but allows voting on another", () => {
    const d = driver();
    d.send("Proposal", A, proposal("p1"));
    d.send("Proposal", A, proposal("p2"));
    expect(outcome(d.send("Vote", B, vote("p1", "APPROVE")))).toBe("ok");
    expect(outcome(d.send("Vote", B, vote("p1", "REJECT")))).toBe("INVALID_ENVELOPE");
    expect(outcome(d.send("Vote", B, vote("p2", "REJECT")))).toBe("ok");
    expect(d.json()).toMatchObject({ phase: "Voting" });
  });
});

describe("decision mode: Commitment", () => {
  it("rejects a mismatched configuration_version", () => {
    const d = driver();
    d.send("Proposal", ORCH, proposal("p1"));
    const commit = commitment(view, { configurationVersion: "cfg-9", action: "decision.selected" });
    expect(outcome(d.send("Commitment", ORCH, commit))).toBe("INVALID_ENVELOPE");
  });

  it("is not ready without a proposal", () => {
    const commit = commitment(view, { action: "decision.selected" });
    expect(outcome(driver().send("Commitment", ORCH, commit))).toBe("INVALID_ENVELOPE");
  });

  it("checks authority before the payload", () => {
    const d = driver();
    d.send("Proposal", ORCH, proposal("p1"));
    expect(outcome(d.send("Commitment", A, new Uint8Array([0xff])))).toBe("FORBIDDEN");
  });

  it("decision_happy_path: resolves with the verbatim payload and the documented state", () => {
    const d = driver();
    expect(outcome(d.send("Proposal", ORCH, proposal("p1", "deploy", "ready")))).toBe("ok");
    expect(outcome(d.send("Vote", A, vote("p1", "APPROVE", "good")))).toBe("ok");
    const commit = commitment(view, {
      action: "decision.selected",
      outcomePositive: true,
      policyVersion: "policy.default",
    });
    const result = d.send("Commitment", ORCH, commit);
    expect(outcome(result)).toBe("ok");
    expect(d.resolution).toEqual(commit);
    expect(d.text()).toBe(
      '{"proposals":{"p1":{"proposal_id":"p1","option":"deploy","rationale":"ready","sender":"agent://orchestrator"}},"evaluations":[],"objections":[],"votes":{"p1":{"agent://a":{"proposal_id":"p1","vote":"APPROVE","reason":"good","sender":"agent://a"}}},"phase":"Committed"}',
    );
    // Anything after the commitment is refused by the mode as well.
    expect(outcome(d.send("Vote", B, vote("p1", "APPROVE")))).toBe("SESSION_NOT_OPEN");
  });

  it("decision_reject_paths: ends Open in phase Voting", () => {
    const d = driver();
    expect(outcome(d.send("Proposal", "agent://outsider", proposal("p1")))).toBe("FORBIDDEN");
    expect(outcome(d.send("Proposal", ORCH, proposal("p1")))).toBe("ok");
    const commit = commitment(view, { action: "decision.selected" });
    expect(outcome(d.send("Commitment", A, commit))).toBe("FORBIDDEN");
    expect(outcome(d.send("Vote", A, vote("p1", "APPROVE")))).toBe("ok");
    expect(outcome(d.send("Evaluation", B, evaluation("p1", "APPROVE")))).toBe("INVALID_ENVELOPE");
    expect(d.json()).toMatchObject({ phase: "Voting" });
    expect(d.resolution).toBeUndefined();
  });

  it("decision_negative_outcome: a decline needs explicit rejections under majority", () => {
    const policyView = withPolicy(
      view,
      { voting: { algorithm: "majority" }, commitment: { authority: "initiator_only" } },
      { schemaVersion: 2, policyId: "policy.decision.majority-decline" },
    );
    const d = driver(policyView);
    expect(outcome(d.send("Proposal", ORCH, proposal("p1")))).toBe("ok");
    const decline = commitment(policyView, { action: "decision.rejected", outcomePositive: false });
    const denied = d.send("Commitment", ORCH, decline);
    expect(outcome(denied)).toBe("POLICY_DENIED");
    expect(denied._unsafeUnwrapErr().reasons?.length).toBeGreaterThan(0);
    expect(outcome(d.send("Vote", A, vote("p1", "REJECT")))).toBe("ok");
    expect(outcome(d.send("Vote", B, vote("p1", "REJECT")))).toBe("ok");
    expect(outcome(d.send("Commitment", ORCH, decline))).toBe("ok");
    expect(d.resolution).toEqual(decline);
  });

  it("pools votes from every proposal for the policy", () => {
    const policyView = withPolicy(view, { voting: { algorithm: "unanimous" } });
    const d = driver(policyView);
    d.send("Proposal", ORCH, proposal("p1"));
    d.send("Proposal", ORCH, proposal("p2"));
    d.send("Vote", ORCH, vote("p1", "APPROVE"));
    d.send("Vote", A, vote("p2", "APPROVE"));
    const positive = commitment(policyView, { action: "decision.selected" });
    expect(outcome(d.send("Commitment", ORCH, positive))).toBe("POLICY_DENIED");
    d.send("Vote", B, vote("p1", "APPROVE"));
    expect(outcome(d.send("Commitment", ORCH, positive))).toBe("ok");
  });
});
