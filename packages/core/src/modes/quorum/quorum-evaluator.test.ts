import { describe, expect, it } from "vitest";
import { testPolicy as policy } from "../mode-test-support.js";
import { evaluateQuorumPolicy, percentageOfParticipants } from "./quorum-evaluator.js";

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
