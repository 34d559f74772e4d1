import type { PolicyDefinition } from "../../policy/policy-definition.js";
import { evaluateWithRules, type PolicyVerdict, verdictFrom } from "../../policy/policy-verdict.js";
import { lowerCaseEquals, upperCaseEquals } from "../../text/letter-case.js";
import { type DecisionRules, parseDecisionRules } from "./decision-rules.js";

/** What the Decision evaluator reads of a session (modes.md §9.9). */
export interface DecisionPolicyInput {
  readonly evaluations: readonly { readonly recommendation: string; readonly confidence: number }[];
  readonly objections: readonly { readonly severity: string }[];
  /** Every vote on every proposal: the evaluator pools them. */
  readonly votes: readonly { readonly sender: string; readonly vote: string }[];
  /** The declared participants (unanimity and the percentage quorum are measured against them). */
  readonly participants: readonly string[];
  readonly outcomePositive: boolean;
}

/** The vote's verdict before it meets the requested outcome. */
export type VoteResult = "Passed" | "Failed" | "NoVotes";

export function evaluateDecisionPolicy(
  policy: PolicyDefinition,
  input: DecisionPolicyInput,
): PolicyVerdict {
  return evaluateWithRules(policy, parseDecisionRules, (rules) => evaluate(rules, input));
}

function evaluate(rules: DecisionRules, input: DecisionPolicyInput): PolicyVerdict {
  const deny: string[] = [];
  const allow: string[] = [];
  const positive = input.outcomePositive;

  // 1. Evaluations. REVIEW means "no stance", so it never satisfies the requirement.
  // (Each step reads the input only when the policy asks for it: this runs on every Commitment.)
  const { requiredBeforeVoting, minimumConfidence } = rules.evaluation;
  if (requiredBeforeVoting) {
    const qualifying = input.evaluations.filter(
      (evaluation) => !upperCaseEquals(evaluation.recommendation, "REVIEW"),
    );
    if (minimumConfidence > 0) {
      if (!qualifying.some((evaluation) => evaluation.confidence >= minimumConfidence)) {
        deny.push(`no evaluation with a stance reaches minimum_confidence ${minimumConfidence}`);
      }
    } else if (qualifying.length === 0) {
      deny.push("an evaluation with a stance is required before commitment");
    }
  }

  // 2. Veto by critical objections, counted per message.
  const { criticalSeverityVetoes, vetoThreshold, criticalObjectionAction } =
    rules.objectionHandling;
  if (criticalSeverityVetoes) {
    const critical = input.objections.filter((objection) =>
      lowerCaseEquals(objection.severity, "critical"),
    ).length;
    if (critical >= vetoThreshold) {
      const vetoed = `${critical} critical objection(s) reach the veto threshold ${vetoThreshold}`;
      switch (criticalObjectionAction) {
        case "deny":
          deny.push(vetoed);
          break;
        case "hold":
          deny.push(`${vetoed}; held for escalation`);
          break;
        case "finalize_decline":
          if (positive) deny.push(`${vetoed}; only a decline may be committed`);
          else allow.push(`${vetoed}; decline finalized`);
          break;
      }
    }
  }

  // 3. Quorum, only when the policy asks for it. Abstainers are voters (they count
  // toward the quorum) but not in the tally.
  const { requireVoteQuorum, allowDeclineOverApproval } = rules.commitment;
  if (requireVoteQuorum) {
    const voters = new Set(input.votes.map((vote) => vote.sender));
    if (!quorumMet(rules, voters.size, input.participants.length)) {
      deny.push(
        `vote quorum not met: ${voters.size} voter(s) for ${rules.voting.quorum.type} ${rules.voting.quorum.value}`,
      );
    }
  }

  // 4. The vote against the requested outcome.
  const algorithm = rules.voting.algorithm;
  if (algorithm === "none") {
    allow.push("no voting constraint: the outcome is taken at face value");
    return verdictFrom(deny, allow);
  }
  const approvals = input.votes.filter((vote) => upperCaseEquals(vote.vote, "APPROVE"));
  const rejections = input.votes.filter((vote) => upperCaseEquals(vote.vote, "REJECT"));
  const result = tally(rules, input, approvals, rejections);
  switch (result) {
    case "Passed":
      if (positive) allow.push(`the vote passed (${algorithm})`);
      else if (allowDeclineOverApproval) allow.push("decline over an approving vote is allowed");
      else deny.push(`the vote passed (${algorithm}); a decline is not allowed`);
      break;
    case "Failed":
      if (positive) deny.push(`the vote failed (${algorithm})`);
      // The decline guard: a vote-backed decline needs at least one explicit REJECT.
      else if (rejections.length > 0) allow.push(`the vote failed (${algorithm})`);
      else deny.push("a decline needs at least one explicit REJECT vote");
      break;
    case "NoVotes":
      if (!positive) deny.push("a decline needs votes, and none were cast");
      else if (requireVoteQuorum) deny.push("no approving or rejecting votes were cast");
      else allow.push("no votes were cast and no quorum is required");
      break;
  }
  return verdictFrom(deny, allow);
}

function quorumMet(rules: DecisionRules, voterCount: number, participantCount: number): boolean {
  const { type, value } = rules.voting.quorum;
  if (type === "percentage") {
    // The reference runtime reads the percentage on a 0–100 scale (modes.md §9.9).
    if (participantCount === 0) return value <= 0;
    return (voterCount * 100) / participantCount >= value;
  }
  // "count", and anything else, counts distinct voters.
  return voterCount >= value;
}

function tally(
  rules: DecisionRules,
  input: DecisionPolicyInput,
  approvals: DecisionPolicyInput["votes"],
  rejections: DecisionPolicyInput["votes"],
): VoteResult {
  const cast = approvals.length + rejections.length;
  if (cast === 0) return "NoVotes";
  const { algorithm, threshold, weights } = rules.voting;
  switch (algorithm) {
    case "majority":
      return approvals.length / cast >= threshold ? "Passed" : "Failed";
    case "supermajority": {
      const required = threshold > 0.5 ? threshold : 2 / 3;
      return approvals.length / cast >= required ? "Passed" : "Failed";
    }
    case "unanimous": {
      const approvers = new Set(approvals.map((vote) => vote.sender));
      const everyoneApproved = input.participants.every((participant) =>
        approvers.has(participant),
      );
      return everyoneApproved && rejections.length === 0 ? "Passed" : "Failed";
    }
    case "weighted": {
      const weightOf = (vote: { readonly sender: string }) => weights.get(vote.sender) ?? 1;
      const approving = approvals.reduce((sum, vote) => sum + weightOf(vote), 0);
      const total = approving + rejections.reduce((sum, vote) => sum + weightOf(vote), 0);
      if (total === 0) return "NoVotes";
      return approving / total >= threshold ? "Passed" : "Failed";
    }
    case "plurality":
      return approvals.length > rejections.length ? "Passed" : "Failed";
    default:
      // An algorithm this runtime does not know must never pass silently.
      return "Failed";
  }
}
