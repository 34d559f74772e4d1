import { describe, expect, it } from "vitest";
import { testPolicy as policy } from "../mode-test-support.js";
import { evaluateProposalPolicy } from "./proposal-evaluator.js";

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
