import { describe, expect, it } from "vitest";
import type { JsonObject } from "../../json.js";
import { DEFAULT_POLICY } from "../../policy/policy-registry.js";
import { testPolicy } from "../mode-test-support.js";
import { type DecisionPolicyInput, evaluateDecisionPolicy } from "./decision-evaluator.js";

const PARTICIPANTS = ["a", "b", "c"];

function policy(rules: JsonObject, schemaVersion = 2) {
  return testPolicy(rules, schemaVersion, "macp.mode.decision.v1");
}

function input(overrides: Partial<DecisionPolicyInput> = {}): DecisionPolicyInput {
  return {
    evaluations: [],
    objections: [],
    votes: [],
    participants: PARTICIPANTS,
    outcomePositive: true,
    ...overrides,
  };
}

const votes = (...pairs: [string, string][]) => pairs.map(([sender, vote]) => ({ sender, vote }));
const positive = (rules: JsonObject, extra: Partial<DecisionPolicyInput> = {}) =>
  evaluateDecisionPolicy(policy(rules), input({ ...extra, outcomePositive: true }));
const negative = (rules: JsonObject, extra: Partial<DecisionPolicyInput> = {}) =>
  evaluateDecisionPolicy(policy(rules), input({ ...extra, outcomePositive: false }));

describe("decision evaluator: frame", () => {
  it("allows both outcomes under the default policy, with or without votes", () => {
    expect(evaluateDecisionPolicy(DEFAULT_POLICY, input()).allowed).toBe(true);
    expect(evaluateDecisionPolicy(DEFAULT_POLICY, input({ outcomePositive: false })).allowed).toBe(
      true,
    );
  });

  it.each([0, 3])("denies everything under schema_version %i", (version) => {
    const verdict = evaluateDecisionPolicy(policy({}, version), input());
    expect(verdict).toMatchObject({ allowed: false });
    expect(verdict.reasons[0]).toContain("schema_version");
  });

  it("denies when the rules cannot be read", () => {
    const verdict = positive({ voting: { threshold: "high" } });
    expect(verdict.allowed).toBe(false);
    expect(verdict.reasons[0]).toContain("cannot be read");
  });

  it("accumulates every deny reason", () => {
    const verdict = positive(
      {
        evaluation: { required_before_voting: true },
        objection_handling: { critical_severity_vetoes: true },
        voting: { algorithm: "majority", quorum: { value: 3 } },
        commitment: { require_vote_quorum: true },
      },
      { objections: [{ severity: "critical" }], votes: votes(["a", "REJECT"]) },
    );
    expect(verdict.allowed).toBe(false);
    expect(verdict.reasons).toHaveLength(4);
  });
});

describe("decision evaluator: evaluations", () => {
  const required = { evaluation: { required_before_voting: true } };

  it("requires a non-REVIEW evaluation when required_before_voting, for both outcomes", () => {
    expect(positive(required).allowed).toBe(false);
    expect(negative(required).allowed).toBe(false);
    const reviewOnly = { evaluations: [{ recommendation: "REVIEW", confidence: 1 }] };
    expect(positive(required, reviewOnly).allowed).toBe(false);
    const blocking = { evaluations: [{ recommendation: "BLOCK", confidence: 0.1 }] };
    expect(positive(required, blocking).allowed).toBe(true);
  });

  it("with minimum_confidence needs one qualifying evaluation at or above it", () => {
    const rules = { evaluation: { required_before_voting: true, minimum_confidence: 0.8 } };
    const low = { evaluations: [{ recommendation: "APPROVE", confidence: 0.79 }] };
    expect(positive(rules, low).allowed).toBe(false);
    const review = { evaluations: [{ recommendation: "REVIEW", confidence: 0.95 }] };
    expect(positive(rules, review).allowed).toBe(false);
    const enough = { evaluations: [{ recommendation: "REJECT", confidence: 0.8 }] };
    expect(positive(rules, enough).allowed).toBe(true);
  });

  it("ignores minimum_confidence unless required_before_voting is set", () => {
    const low = { evaluations: [{ recommendation: "APPROVE", confidence: 0.1 }] };
    expect(positive({ evaluation: { minimum_confidence: 0.9 } }, low).allowed).toBe(true);
    expect(positive({ evaluation: { minimum_confidence: 0.9 } }).allowed).toBe(true);
  });
});

describe("decision evaluator: critical objections", () => {
  const critical = { objections: [{ severity: "critical" }] };
  const veto = (action?: string, threshold = 1) => ({
    objection_handling: {
      critical_severity_vetoes: true,
      veto_threshold: threshold,
      ...(action === undefined ? {} : { critical_objection_action: action }),
    },
  });

  it("deny (the default) and hold deny both outcomes", () => {
    for (const rules of [veto(), veto("deny"), veto("hold")]) {
      expect(positive(rules, critical).allowed).toBe(false);
      expect(negative(rules, critical).allowed).toBe(false);
    }
    expect(positive(veto("hold"), critical).reasons[0]).toContain("held");
  });

  it("finalize_decline allows a decline and denies a positive outcome", () => {
    expect(negative(veto("finalize_decline"), critical).allowed).toBe(true);
    expect(positive(veto("finalize_decline"), critical).allowed).toBe(false);
  });

  it("finalize_decline still leaves a vote-gated decline to the later checks", () => {
    const rules = { ...veto("finalize_decline"), voting: { algorithm: "majority" } };
    expect(negative(rules, critical).allowed).toBe(false);
    expect(negative(rules, { ...critical, votes: votes(["a", "REJECT"]) }).allowed).toBe(true);
  });

  it("counts critical objections per message against veto_threshold", () => {
    expect(positive(veto("deny", 2), critical).allowed).toBe(true);
    const twice = { objections: [{ severity: "critical" }, { severity: "critical" }] };
    expect(positive(veto("deny", 2), twice).allowed).toBe(false);
    expect(positive(veto("deny"), { objections: [{ severity: "high" }] }).allowed).toBe(true);
  });

  it("has no effect without critical_severity_vetoes", () => {
    expect(positive({ objection_handling: { veto_threshold: 1 } }, critical).allowed).toBe(true);
  });
});

describe("decision evaluator: quorum", () => {
  const countQuorum = (value: number, require = true) => ({
    voting: { quorum: { type: "count", value } },
    commitment: { require_vote_quorum: require },
  });

  it("counts distinct voters, abstainers included, and denies both outcomes when unmet", () => {
    const two = { votes: votes(["a", "ABSTAIN"], ["b", "APPROVE"], ["b", "APPROVE"]) };
    expect(positive(countQuorum(2), two).allowed).toBe(true);
    expect(positive(countQuorum(3), two).allowed).toBe(false);
    expect(negative(countQuorum(3), two).allowed).toBe(false);
  });

  it("ignores the quorum unless require_vote_quorum is set", () => {
    expect(positive(countQuorum(3, false)).allowed).toBe(true);
  });

  it("reads a percentage quorum on a 0-100 scale of declared participants", () => {
    const rules = {
      voting: { quorum: { type: "percentage", value: 60 } },
      commitment: { require_vote_quorum: true },
    };
    expect(positive(rules, { votes: votes(["a", "APPROVE"]) }).allowed).toBe(false);
    expect(positive(rules, { votes: votes(["a", "APPROVE"], ["b", "ABSTAIN"]) }).allowed).toBe(
      true,
    );
  });
});

describe("decision evaluator: voting algorithms", () => {
  it("majority: a tie passes, less fails, a custom threshold applies", () => {
    const majority = { voting: { algorithm: "majority" } };
    expect(positive(majority, { votes: votes(["a", "APPROVE"], ["b", "REJECT"]) }).allowed).toBe(
      true,
    );
    const minority = votes(["a", "APPROVE"], ["b", "REJECT"], ["c", "REJECT"]);
    expect(positive(majority, { votes: minority }).allowed).toBe(false);
    const strict = { voting: { algorithm: "majority", threshold: 0.6 } };
    expect(positive(strict, { votes: votes(["a", "APPROVE"], ["b", "REJECT"]) }).allowed).toBe(
      false,
    );
  });

  it("supermajority: 2/3 does not meet 0.67 but meets the 2/3 fallback", () => {
    const twoOfThree = { votes: votes(["a", "APPROVE"], ["b", "APPROVE"], ["c", "REJECT"]) };
    const strict = { voting: { algorithm: "supermajority", threshold: 0.67 } };
    expect(positive(strict, twoOfThree).allowed).toBe(false);
    const fallback = { voting: { algorithm: "supermajority", threshold: 0.5 } };
    expect(positive(fallback, twoOfThree).allowed).toBe(true);
  });

  it("unanimous: a missing voter fails, and the decline is denied without a REJECT", () => {
    const unanimous = { voting: { algorithm: "unanimous" } };
    const missing = { votes: votes(["a", "APPROVE"], ["b", "APPROVE"]) };
    expect(positive(unanimous, missing).allowed).toBe(false);
    expect(negative(unanimous, missing).allowed).toBe(false);
    const everyone = { votes: votes(["a", "APPROVE"], ["b", "APPROVE"], ["c", "APPROVE"]) };
    expect(positive(unanimous, everyone).allowed).toBe(true);
    const abstainer = { votes: votes(["a", "APPROVE"], ["b", "APPROVE"], ["c", "ABSTAIN"]) };
    expect(positive(unanimous, abstainer).allowed).toBe(false);
    const rejected = { votes: votes(["a", "APPROVE"], ["b", "APPROVE"], ["c", "REJECT"]) };
    expect(negative(unanimous, rejected).allowed).toBe(true);
  });

  it("weighted: abstainers are excluded from the total; missing weights count 1", () => {
    const weighted = { voting: { algorithm: "weighted", threshold: 0.6, weights: { a: 3, b: 1 } } };
    // a approves (3) against b rejecting (1): 0.75; c abstains and weighs nothing.
    const withAbstainer = { votes: votes(["a", "APPROVE"], ["b", "REJECT"], ["c", "ABSTAIN"]) };
    expect(positive(weighted, withAbstainer).allowed).toBe(true);
    // c (weight 1) rejecting as well: 3 / 5 = 0.6 passes; b approving instead of a: 1/4 fails.
    expect(
      positive(weighted, { votes: votes(["a", "APPROVE"], ["b", "REJECT"], ["c", "REJECT"]) })
        .allowed,
    ).toBe(true);
    expect(positive(weighted, { votes: votes(["b", "APPROVE"], ["a", "REJECT"]) }).allowed).toBe(
      false,
    );
  });

  it("weighted: a zero total weight is NoVotes", () => {
    const zero = { voting: { algorithm: "weighted", weights: { a: 0 } } };
    const onlyA = { votes: votes(["a", "REJECT"]) };
    expect(negative(zero, onlyA).allowed).toBe(false);
    expect(positive(zero, onlyA).allowed).toBe(true);
  });

  it("plurality: approvals must outnumber rejections; a tie fails", () => {
    const plurality = { voting: { algorithm: "plurality" } };
    expect(positive(plurality, { votes: votes(["a", "APPROVE"], ["b", "REJECT"]) }).allowed).toBe(
      false,
    );
    expect(positive(plurality, { votes: votes(["a", "APPROVE"]) }).allowed).toBe(true);
  });

  it("an unknown algorithm never passes", () => {
    const unknown = { voting: { algorithm: "coin-flip" } };
    expect(positive(unknown, { votes: votes(["a", "APPROVE"]) }).allowed).toBe(false);
  });

  it("none takes both outcomes at face value, with no decline guard", () => {
    const none = { voting: { algorithm: "none" } };
    expect(negative(none, { votes: votes(["a", "APPROVE"]) }).allowed).toBe(true);
  });
});

describe("decision evaluator: result versus outcome", () => {
  const majority = { voting: { algorithm: "majority" } };
  const abstentions = { votes: votes(["a", "ABSTAIN"], ["b", "ABSTAIN"]) };

  it("all ABSTAIN is NoVotes: positive allowed without a quorum requirement, decline denied", () => {
    expect(positive(majority, abstentions).allowed).toBe(true);
    expect(negative(majority, abstentions).allowed).toBe(false);
    const withQuorum = { ...majority, commitment: { require_vote_quorum: true } };
    expect(positive(withQuorum, abstentions).allowed).toBe(false);
  });

  it("Passed denies a decline unless allow_decline_over_approval, which needs no REJECT", () => {
    const passed = { votes: votes(["a", "APPROVE"]) };
    expect(negative(majority, passed).allowed).toBe(false);
    const lenient = { ...majority, commitment: { allow_decline_over_approval: true } };
    expect(negative(lenient, passed).allowed).toBe(true);
  });

  it("Failed allows a decline only with an explicit REJECT", () => {
    const failed = { votes: votes(["a", "REJECT"], ["b", "REJECT"]) };
    expect(negative(majority, failed).allowed).toBe(true);
    expect(positive(majority, failed).allowed).toBe(false);
  });
});
