// The Proposal Commitment evaluator (modes.md §9.11): it sees only what its rules talk
// about, plus the requested outcome; negative outcomes are exempt from the
// checks that only make sense for positive ones.

import type { PolicyDefinition } from "../../policy/policy-definition.js";
import { evaluateWithRules, type PolicyVerdict, verdictFrom } from "../../policy/policy-verdict.js";
import { parseProposalRules } from "./proposal-rules.js";

export interface ProposalPolicyInput {
  /** Counter-proposals in the whole session (records that supersede another). */
  readonly counterProposalCount: number;
  readonly outcomePositive: boolean;
}

export function evaluateProposalPolicy(
  policy: PolicyDefinition,
  input: ProposalPolicyInput,
): PolicyVerdict {
  return evaluateWithRules(policy, parseProposalRules, (rules) => {
    const maxRounds = rules.counterProposal.maxRounds;
    const deny: string[] = [];
    if (input.outcomePositive && maxRounds > 0 && input.counterProposalCount > maxRounds) {
      deny.push(
        `${input.counterProposalCount} counter-proposals exceed counter_proposal.max_rounds ${maxRounds}`,
      );
    }
    return verdictFrom(deny, []);
  });
}
