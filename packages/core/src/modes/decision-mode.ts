import { decision, type Envelope } from "@macp/proto";
import { err, ok, type Result } from "neverthrow";
import { ErrorCode, type MacpError, macpError } from "../errors.js";
import type { JsonValue } from "../json.js";
import type { ModeHandler, ModeStep, SessionView } from "../mode-handler.js";
import { evaluateDecisionPolicy } from "../policy/decision-evaluator.js";
import { verdictToResult } from "../policy/policy-verdict.js";
import { COMMITMENT, checkCommitmentAuthority, validateCommitmentPayload } from "./commitment.js";
import {
  decodePayload,
  forbidden,
  invalidEnvelope,
  isBlank,
  requireDeclaredParticipant,
  withEntry,
} from "./mode-support.js";
import { mapJson } from "./state-json.js";

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

export interface DecisionState {
  readonly proposals: ReadonlyMap<string, DecisionProposal>;
  readonly evaluations: readonly DecisionEvaluation[];
  readonly objections: readonly DecisionObjection[];
  /** proposal id → voter → vote. */
  readonly votes: ReadonlyMap<string, ReadonlyMap<string, DecisionVote>>;
  readonly phase: DecisionPhase;
}

const PARTICIPANT_MESSAGES = new Set(["Proposal", "Evaluation", "Objection", "Vote"]);
const RECOMMENDATIONS = new Set(["APPROVE", "REVIEW", "BLOCK", "REJECT"]);
const SEVERITIES = new Set(["critical", "high", "medium", "low"]);
const VOTES = new Set(["APPROVE", "REJECT", "ABSTAIN"]);

type Step = Result<ModeStep<DecisionState>, MacpError>;

export const decisionMode: ModeHandler<DecisionState> = {
  onSessionStart(session) {
    if (session.participants.length === 0) {
      return err(invalidEnvelope("a decision session needs at least one participant"));
    }
    return ok({
      proposals: new Map(),
      evaluations: [],
      objections: [],
      votes: new Map(),
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
  return decodePayload(decision.ProposalPayloadSchema, envelope.payload, "Proposal").andThen(
    (payload) => {
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
          ...state,
          proposals: withEntry(state.proposals, proposal.proposalId, proposal),
          phase: "Evaluation" as const,
        },
      });
    },
  );
}

function onEvaluation(state: DecisionState, envelope: Envelope): Step {
  return decodePayload(decision.EvaluationPayloadSchema, envelope.payload, "Evaluation").andThen(
    (payload) => {
      const recommendation = payload.recommendation.toUpperCase();
      if (!RECOMMENDATIONS.has(recommendation)) {
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
      if (!state.proposals.has(payload.proposalId)) {
        return err(invalidEnvelope(`unknown proposal '${payload.proposalId}'`));
      }
      const evaluation: DecisionEvaluation = {
        proposalId: payload.proposalId,
        recommendation,
        confidence: payload.confidence,
        reason: payload.reason,
        sender: envelope.sender,
      };
      return ok({ state: { ...state, evaluations: [...state.evaluations, evaluation] } });
    },
  );
}

function onObjection(state: DecisionState, envelope: Envelope): Step {
  return decodePayload(decision.ObjectionPayloadSchema, envelope.payload, "Objection").andThen(
    (payload) => {
      const severity = payload.severity === "" ? "medium" : payload.severity.toLowerCase();
      if (!SEVERITIES.has(severity)) {
        return err(
          invalidEnvelope(`severity '${payload.severity}' is not low/medium/high/critical`),
        );
      }
      if (state.phase !== "Evaluation") {
        return err(invalidEnvelope(`objections are not accepted in phase ${state.phase}`));
      }
      if (!state.proposals.has(payload.proposalId)) {
        return err(invalidEnvelope(`unknown proposal '${payload.proposalId}'`));
      }
      const objection: DecisionObjection = {
        proposalId: payload.proposalId,
        reason: payload.reason,
        severity,
        sender: envelope.sender,
      };
      return ok({ state: { ...state, objections: [...state.objections, objection] } });
    },
  );
}

function onVote(state: DecisionState, envelope: Envelope): Step {
  return decodePayload(decision.VotePayloadSchema, envelope.payload, "Vote").andThen((payload) => {
    const choice = payload.vote.toUpperCase();
    if (!VOTES.has(choice)) {
      return err(invalidEnvelope(`vote '${payload.vote}' is not APPROVE/REJECT/ABSTAIN`));
    }
    if (state.phase !== "Evaluation" && state.phase !== "Voting") {
      return err(invalidEnvelope(`votes are not accepted in phase ${state.phase}`));
    }
    if (!state.proposals.has(payload.proposalId)) {
      return err(invalidEnvelope(`unknown proposal '${payload.proposalId}'`));
    }
    const byVoter = state.votes.get(payload.proposalId) ?? new Map<string, DecisionVote>();
    if (byVoter.has(envelope.sender)) {
      return err(
        invalidEnvelope(`${envelope.sender} already voted on proposal '${payload.proposalId}'`),
      );
    }
    const vote: DecisionVote = {
      proposalId: payload.proposalId,
      vote: choice,
      reason: payload.reason,
      sender: envelope.sender,
    };
    return ok({
      state: {
        ...state,
        votes: withEntry(
          state.votes,
          payload.proposalId,
          withEntry(byVoter, envelope.sender, vote),
        ),
        phase: "Voting" as const,
      },
    });
  });
}

function onCommitment(session: SessionView, state: DecisionState, envelope: Envelope): Step {
  return validateCommitmentPayload(session, envelope.payload).andThen((commitment) => {
    if (state.proposals.size === 0) {
      return err(invalidEnvelope("a decision needs at least one proposal before commitment"));
    }
    const votes = [...state.votes.values()].flatMap((byVoter) => [...byVoter.values()]);
    const verdict = evaluateDecisionPolicy(session.policy, {
      evaluations: state.evaluations,
      objections: state.objections,
      votes,
      participants: session.participants,
      outcomePositive: commitment.outcomePositive,
    });
    return verdictToResult(verdict).map(() => ({
      state: { ...state, phase: "Committed" as const },
      resolution: envelope.payload.slice(),
    }));
  });
}
