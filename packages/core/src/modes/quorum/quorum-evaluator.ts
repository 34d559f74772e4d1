// The Quorum Commitment evaluator (modes.md §9.13): it sees only what its rules talk
// about, plus the requested outcome; negative outcomes are exempt from the
// checks that only make sense for positive ones.

import type { PolicyDefinition } from "../../policy/policy-definition.js";
import { evaluateWithRules, type PolicyVerdict, verdictFrom } from "../../policy/policy-verdict.js";
import { parseQuorumRules } from "./quorum-rules.js";

export interface QuorumPolicyInput {
  readonly approvals: number;
  readonly rejections: number;
  readonly abstentions: number;
  readonly participantCount: number;
  readonly outcomePositive: boolean;
}

export function evaluateQuorumPolicy(
  policy: PolicyDefinition,
  input: QuorumPolicyInput,
): PolicyVerdict {
  return evaluateWithRules(policy, parseQuorumRules, (rules) => {
    const deny: string[] = [];
    const allow: string[] = [];
    const { type, value } = rules.threshold;
    if (value > 0 && input.outcomePositive) {
      // The evaluator rounds count thresholds up, where readiness truncates (modes.md §6.5).
      const required =
        type === "percentage"
          ? percentageOfParticipants(value, input.participantCount)
          : Math.ceil(value);
      if (input.approvals < required) {
        deny.push(`${input.approvals} approval(s) are below the policy threshold of ${required}`);
      }
    }
    if (rules.abstention.interpretation === "implicit_reject" && input.abstentions > 0) {
      allow.push(`${input.abstentions} abstention(s) read as implicit rejections`);
    }
    return verdictFrom(deny, allow);
  });
}

/**
 * The approvals a percentage threshold asks for. The reference runtime reads the
 * value on a 0–100 scale. Multiplying before dividing keeps whole results exact
 * (70% of 10 is 7, not 7.000000000000001 rounded up to 8).
 */
export function percentageOfParticipants(percent: number, participantCount: number): number {
  return Math.ceil((percent * participantCount) / 100);
}
