import { decision, type Envelope } from "@macp/proto";
import { err, ok, type Result } from "neverthrow";
import { ErrorCode, type MacpError, macpError } from "../../errors.js";
import type { JsonValue } from "../../json.js";
import type { ModeHandler, ModeStep, SessionView } from "../../mode-handler.js";
import { policyDeniedError } from "../../policy/policy-verdict.js";
import { Spellings } from "../../text/letter-case.js";
import { COMMITMENT, checkCommitmentAuthority, validateCommitmentPayload } from "../commitment.js";
import {
  decodePayload,
  forbidden,
  invalidEnvelope,
  isBlank,
  requireDeclaredParticipant,
} from "../mode-support.js";
import { PersistentList } from "../persistent-list.js";
import { PersistentMap } from "../persistent-map.js";
import { PersistentNestedMap } from "../persistent-nested-map.js";
import { mapJson } from "../state-json.js";
import { evaluateDecisionPolicy } from "./decision-evaluator.js";
import { decisionPolicyRules } from "./decision-rules.js";

// macp.mode.decision.v1 (modes.md §2).

export type DecisionPhase = "Proposal" | "Evaluation" | "Voting" | "Committed";

export interface DecisionProposal {
  readonly proposalId: string;
  readonly option: string;
  readonly rationale: string;
  readonly sender: string;
}

export interface DecisionEvaluation {
  readonly proposalId: string;
  /** Upper-cased: APPROVE, REVIEW, BLOCK or REJECT. */
  readonly recommendation: string;
  readonly confidence: number;
  readonly reason: string;
  readonly sender: string;
}

export interface DecisionObjection {
  readonly proposalId: string;
  readonly reason: string;
  /** Lower-cased: low, medium, high or critical. */
  readonly severity: string;
  readonly sender: string;
}

export interface DecisionVote {
  readonly proposalId: string;
  /** Upper-cased: APPROVE, REJECT or ABSTAIN. */
  readonly vote: string;
  readonly reason: string;
  readonly sender: string;
}

/**
 * The state of a decision session. The growing collections are persistent
 * (shared between versions, O(1) to extend), so a message never copies them.
 */
export interface DecisionState {
  readonly proposals: PersistentMap<string, DecisionProposal>;
  readonly evaluations: PersistentList<DecisionEvaluation>;
  readonly objections: PersistentList<DecisionObjection>;
  /** proposal id → voter → vote. */
  readonly votes: PersistentNestedMap<string, string, DecisionVote>;
  readonly phase: DecisionPhase;
}

const PARTICIPANT_MESSAGES = new Set(["Proposal", "Evaluation", "Objection", "Vote"]);
const RECOMMENDATIONS = new Spellings(["APPROVE", "REVIEW", "BLOCK", "REJECT"], "upper");
const SEVERITIES = new Spellings(["critical", "high", "medium", "low"], "lower");
const VOTES = new Spellings(["APPROVE", "REJECT", "ABSTAIN"], "upper");

type Step = Result<ModeStep<DecisionState>, MacpError>;

export const decisionMode: ModeHandler<DecisionState> = {
  policyRules: decisionPolicyRules,
  onSessionStart(session) {
    if (session.participants.length === 0) {
      return err(invalidEnvelope("a decision session needs at least one participant"));
    }
    return ok({
      proposals: PersistentMap.empty(),
      evaluations: PersistentList.empty(),
      objections: PersistentList.empty(),
      votes: PersistentNestedMap.empty(),
      phase: "Proposal",
    });
  },

  authorizeSender(ctx, _state, envelope) {
    const { session } = ctx;
    if (envelope.messageType === COMMITMENT) {
      return checkCommitmentAuthority(session, envelope.sender);
    }
    if (PARTICIPANT_MESSAGES.has(envelope.messageType)) {
      return requireDeclaredParticipant(session, envelope.sender, envelope.messageType);
    }
    // Decision answers unknown types with FORBIDDEN, not INVALID_ENVELOPE (modes.md §2.2).
    return err(forbidden(`decision mode does not accept ${envelope.messageType}`));
  },

  onMessage(ctx, state, envelope) {
    if (state.phase === "Committed") {
      return err(macpError(ErrorCode.SESSION_NOT_OPEN, "the decision is already committed"));
    }
    switch (envelope.messageType) {
      case "Proposal":
        return onProposal(state, envelope);
      case "Evaluation":
        return onEvaluation(state, envelope);
      case "Objection":
        return onObjection(state, envelope);
      case "Vote":
        return onVote(state, envelope);
      case COMMITMENT:
        return onCommitment(ctx.session, state, envelope);
      default:
        return err(forbidden(`decision mode does not accept ${envelope.messageType}`));
    }
  },

  encodeState(state): JsonValue {
    return {
      proposals: mapJson(state.proposals, (proposal) => ({
        proposal_id: proposal.proposalId,
        option: proposal.option,
        rationale: proposal.rationale,
        sender: proposal.sender,
      })),
      evaluations: state.evaluations.map((evaluation) => ({
        proposal_id: evaluation.proposalId,
        recommendation: evaluation.recommendation,
        confidence: evaluation.confidence,
        reason: evaluation.reason,
        sender: evaluation.sender,
      })),
      objections: state.objections.map((objection) => ({
        proposal_id: objection.proposalId,
        reason: objection.reason,
        severity: objection.severity,
        sender: objection.sender,
      })),
      votes: mapJson(state.votes, (byVoter) =>
        mapJson(byVoter, (vote) => ({
          proposal_id: vote.proposalId,
          vote: vote.vote,
          reason: vote.reason,
          sender: vote.sender,
        })),
      ),
      phase: state.phase,
    };
  },
};

function onProposal(state: DecisionState, envelope: Envelope): Step {
  if (state.phase === "Voting") {
    return err(invalidEnvelope("no new proposals once voting has begun"));
  }
  const decoded = decodePayload(decision.ProposalPayloadSchema, envelope.payload, "Proposal");
  if (decoded.isErr()) return err(decoded.error);
  const payload = decoded.value;
  if (isBlank(payload.proposalId)) return err(invalidEnvelope("proposal_id must not be blank"));
  if (isBlank(payload.option)) return err(invalidEnvelope("option must not be blank"));
  if (state.proposals.has(payload.proposalId)) {
    return err(invalidEnvelope(`proposal '${payload.proposalId}' already exists`));
  }
  // supporting_data is not kept in state, as in the reference runtime.
  const proposal: DecisionProposal = {
    proposalId: payload.proposalId,
    option: payload.option,
    rationale: payload.rationale,
    sender: envelope.sender,
  };
  return ok({
    state: {
      proposals: state.proposals.set(proposal.proposalId, proposal),
      evaluations: state.evaluations,
      objections: state.objections,
      votes: state.votes,
      phase: "Evaluation",
    },
  });
}

function onEvaluation(state: DecisionState, envelope: Envelope): Step {
  const decoded = decodePayload(decision.EvaluationPayloadSchema, envelope.payload, "Evaluation");
  if (decoded.isErr()) return err(decoded.error);
  const payload = decoded.value;
  const recommendation = RECOMMENDATIONS.find(payload.recommendation);
  if (recommendation === undefined) {
    return err(
      invalidEnvelope(
        `recommendation '${payload.recommendation}' is not APPROVE/REVIEW/BLOCK/REJECT`,
      ),
    );
  }
  if (!(payload.confidence >= 0 && payload.confidence <= 1)) {
    return err(invalidEnvelope(`confidence ${payload.confidence} is outside [0, 1]`));
  }
  if (state.phase !== "Evaluation") {
    return err(invalidEnvelope(`evaluations are not accepted in phase ${state.phase}`));
  }
  const proposal = state.proposals.get(payload.proposalId);
  if (proposal === undefined) {
    return err(invalidEnvelope(`unknown proposal '${payload.proposalId}'`));
  }
  // The proposal's own id string: state keeps one copy, not one per message.
  const evaluation: DecisionEvaluation = {
    proposalId: proposal.proposalId,
    recommendation,
    confidence: payload.confidence,
    reason: payload.reason,
    sender: envelope.sender,
  };
  return ok({
    state: {
      proposals: state.proposals,
      evaluations: state.evaluations.append(evaluation),
      objections: state.objections,
      votes: state.votes,
      phase: state.phase,
    },
  });
}

function onObjection(state: DecisionState, envelope: Envelope): Step {
  const decoded = decodePayload(decision.ObjectionPayloadSchema, envelope.payload, "Objection");
  if (decoded.isErr()) return err(decoded.error);
  const payload = decoded.value;
  const severity = payload.severity === "" ? "medium" : SEVERITIES.find(payload.severity);
  if (severity === undefined) {
    return err(invalidEnvelope(`severity '${payload.severity}' is not low/medium/high/critical`));
  }
  if (state.phase !== "Evaluation") {
    return err(invalidEnvelope(`objections are not accepted in phase ${state.phase}`));
  }
  const proposal = state.proposals.get(payload.proposalId);
  if (proposal === undefined) {
    return err(invalidEnvelope(`unknown proposal '${payload.proposalId}'`));
  }
  const objection: DecisionObjection = {
    proposalId: proposal.proposalId,
    reason: payload.reason,
    severity,
    sender: envelope.sender,
  };
  return ok({
    state: {
      proposals: state.proposals,
      evaluations: state.evaluations,
      objections: state.objections.append(objection),
      votes: state.votes,
      phase: state.phase,
    },
  });
}

function onVote(state: DecisionState, envelope: Envelope): Step {
  const decoded = decodePayload(decision.VotePayloadSchema, envelope.payload, "Vote");
  if (decoded.isErr()) return err(decoded.error);
  const payload = decoded.value;
  const choice = VOTES.find(payload.vote);
  if (choice === undefined) {
    return err(invalidEnvelope(`vote '${payload.vote}' is not APPROVE/REJECT/ABSTAIN`));
  }
  if (state.phase !== "Evaluation" && state.phase !== "Voting") {
    return err(invalidEnvelope(`votes are not accepted in phase ${state.phase}`));
  }
  const proposal = state.proposals.get(payload.proposalId);
  if (proposal === undefined) {
    return err(invalidEnvelope(`unknown proposal '${payload.proposalId}'`));
  }
  const proposalId = proposal.proposalId;
  if (state.votes.hasIn(proposalId, envelope.sender)) {
    return err(
      invalidEnvelope(`${envelope.sender} already voted on proposal '${payload.proposalId}'`),
    );
  }
  const vote: DecisionVote = {
    proposalId,
    vote: choice,
    reason: payload.reason,
    sender: envelope.sender,
  };
  return ok({
    state: {
      proposals: state.proposals,
      evaluations: state.evaluations,
      objections: state.objections,
      votes: state.votes.setIn(proposalId, envelope.sender, vote),
      phase: "Voting",
    },
  });
}

function onCommitment(session: SessionView, state: DecisionState, envelope: Envelope): Step {
  const validated = validateCommitmentPayload(session, envelope.payload);
  if (validated.isErr()) return err(validated.error);
  if (state.proposals.size === 0) {
    return err(invalidEnvelope("a decision needs at least one proposal before commitment"));
  }
  const verdict = evaluateDecisionPolicy(session.policy, {
    evaluations: state.evaluations.toArray(),
    objections: state.objections.toArray(),
    votes: state.votes.allValues(),
    participants: session.participants,
    outcomePositive: validated.value.outcomePositive,
  });
  if (!verdict.allowed) return err(policyDeniedError(verdict));
  return ok({
    state: {
      proposals: state.proposals,
      evaluations: state.evaluations,
      objections: state.objections,
      votes: state.votes,
      phase: "Committed",
    },
    resolution: envelope.payload.slice(),
  });
}
