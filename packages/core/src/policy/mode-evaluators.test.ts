import { describe, expect, it } from "vitest";
import type { JsonObject } from "../json.js";
import {
  evaluateHandoffPolicy,
  evaluateProposalPolicy,
  evaluateQuorumPolicy,
  evaluateTaskPolicy,
  percentageOfParticipants,
} from "./mode-evaluators.js";
import type { PolicyDefinition } from "./policy-definition.js";
import { verdictToResult } from "./policy-verdict.js";

function policy(rules: JsonObject, schemaVersion = 1): PolicyDefinition {
  return {
    policyId: "policy.test",
    mode: "*",
    description: "",
    rules,
    schemaVersion,
    registeredAtUnixMs: 0,
  };
}

describe("proposal evaluator", () => {
  const capped = policy({ counter_proposal: { max_rounds: 2 } });

  it("denies a positive outcome only when counter-proposals exceed max_rounds", () => {
    const over = { counterProposalCount: 3, outcomePositive: true };
    expect(evaluateProposalPolicy(capped, over).allowed).toBe(false);
    expect(evaluateProposalPolicy(capped, { ...over, outcomePositive: false }).allowed).toBe(true);
    expect(evaluateProposalPolicy(capped, { ...over, counterProposalCount: 2 }).allowed).toBe(true);
    expect(evaluateProposalPolicy(policy({}), { ...over, counterProposalCount: 99 }).allowed).toBe(
      true,
    );
  });

  it("denies on unreadable rules or an unsupported schema version", () => {
    const input = { counterProposalCount: 0, outcomePositive: true };
    expect(evaluateProposalPolicy(policy({ rejection: 1 }), input).allowed).toBe(false);
    expect(evaluateProposalPolicy(policy({}, 9), input).allowed).toBe(false);
  });
});

describe("task evaluator", () => {
  const strict = policy({ completion: { require_output: true } });

  it("with require_output denies a positive outcome without output only", () => {
    expect(evaluateTaskPolicy(strict, { hasOutput: false, outcomePositive: true }).allowed).toBe(
      false,
    );
    expect(evaluateTaskPolicy(strict, { hasOutput: false, outcomePositive: false }).allowed).toBe(
      true,
    );
    expect(evaluateTaskPolicy(strict, { hasOutput: true, outcomePositive: true }).allowed).toBe(
      true,
    );
    expect(
      evaluateTaskPolicy(policy({}), { hasOutput: false, outcomePositive: true }).allowed,
    ).toBe(true);
  });
});

describe("quorum evaluator", () => {
  const tally = { approvals: 2, rejections: 0, abstentions: 1, participantCount: 3 };

  it("denies a positive outcome below the policy threshold, never a negative one", () => {
    const three = policy({ threshold: { type: "n_of_m", value: 3 } });
    expect(evaluateQuorumPolicy(three, { ...tally, outcomePositive: true }).allowed).toBe(false);
    expect(evaluateQuorumPolicy(three, { ...tally, outcomePositive: false }).allowed).toBe(true);
    expect(
      evaluateQuorumPolicy(policy({}), { ...tally, approvals: 0, outcomePositive: true }).allowed,
    ).toBe(true);
  });

  it("rounds count thresholds up and reads percentages on a 0-100 scale", () => {
    const fractional = policy({ threshold: { type: "count", value: 1.2 } });
    expect(
      evaluateQuorumPolicy(fractional, { ...tally, approvals: 1, outcomePositive: true }).allowed,
    ).toBe(false);
    const percentage = policy({ threshold: { type: "percentage", value: 60 } });
    const five = { ...tally, participantCount: 5, outcomePositive: true };
    expect(evaluateQuorumPolicy(percentage, { ...five, approvals: 2 }).allowed).toBe(false);
    expect(evaluateQuorumPolicy(percentage, { ...five, approvals: 3 }).allowed).toBe(true);
    expect(percentageOfParticipants(60, 5)).toBe(3);
    expect(percentageOfParticipants(70, 10)).toBe(7);
    expect(percentageOfParticipants(50, 3)).toBe(2);
  });

  it("adds an informational reason for implicit_reject abstentions", () => {
    const rules = policy({ abstention: { interpretation: "implicit_reject" } });
    const verdict = evaluateQuorumPolicy(rules, { ...tally, outcomePositive: true });
    expect(verdict.allowed).toBe(true);
    expect(verdict.reasons[0]).toContain("implicit");
  });
});

describe("handoff evaluator", () => {
  it("allows after the frame, and denies on a bad frame", () => {
    const input = { outcomePositive: true };
    expect(
      evaluateHandoffPolicy(policy({ acceptance: { implicit_accept_timeout_ms: 5 } }), input)
        .allowed,
    ).toBe(true);
    expect(evaluateHandoffPolicy(policy({}, 3), input).allowed).toBe(false);
    expect(
      evaluateHandoffPolicy(policy({ acceptance: { implicit_accept_timeout_ms: -1 } }), input)
        .allowed,
    ).toBe(false);
  });
});

describe("verdictToResult", () => {
  it("turns a denial into POLICY_DENIED carrying the reasons", () => {
    const error = verdictToResult({ allowed: false, reasons: ["one", "two"] })._unsafeUnwrapErr();
    expect(error).toMatchObject({ code: "POLICY_DENIED", reasons: ["one", "two"] });
    expect(verdictToResult({ allowed: true, reasons: ["fine"] }).isOk()).toBe(true);
  });
});
