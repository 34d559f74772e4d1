import type { PolicyDefinition } from "./policy-definition.js";
import {
  parseHandoffRules,
  parseProposalRules,
  parseQuorumRules,
  parseTaskRules,
} from "./policy-rules.js";
import {
  allowVerdict,
  evaluateWithRules,
  type PolicyVerdict,
  verdictFrom,
} from "./policy-verdict.js";

// The Commitment evaluators of the modes other than Decision (modes.md §9.10–§9.13).
// Each sees only what its rules talk about, plus the requested outcome: negative
// outcomes are exempt from the checks that only make sense for positive ones.

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

export interface TaskPolicyInput {
  /** The terminal report is a TaskComplete with non-empty output. */
  readonly hasOutput: boolean;
  readonly outcomePositive: boolean;
}

export function evaluateTaskPolicy(
  policy: PolicyDefinition,
  input: TaskPolicyInput,
): PolicyVerdict {
  return evaluateWithRules(policy, parseTaskRules, (rules) => {
    const deny: string[] = [];
    if (input.outcomePositive && rules.completion.requireOutput && !input.hasOutput) {
      deny.push("completion.require_output: a positive outcome needs a completed task with output");
    }
    return verdictFrom(deny, []);
  });
}

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

export interface HandoffPolicyInput {
  readonly outcomePositive: boolean;
}

/** Handoff rules constrain timing only (implicit accept), so the evaluator allows once the frame passes. */
export function evaluateHandoffPolicy(
  policy: PolicyDefinition,
  _input: HandoffPolicyInput,
): PolicyVerdict {
  return evaluateWithRules(policy, parseHandoffRules, () => allowVerdict());
}
