import { type Envelope, quorum } from "@macp/proto";
import { err, ok, type Result } from "neverthrow";
import type { MacpError } from "../../errors.js";
import type { JsonValue } from "../../json.js";
import type { ModeHandler, ModeStep, SessionView } from "../../mode-handler.js";
import { rulesOrDefaults } from "../../policy/policy-rules.js";
import { verdictToResult } from "../../policy/policy-verdict.js";
import { authorizeOrchestrated, COMMITMENT, validateCommitmentPayload } from "../commitment.js";
import { decodePayload, invalidEnvelope, requireInitiator, withEntry } from "../mode-support.js";
import { PersistentMap } from "../persistent-map.js";
import { bytesJson, mapJson } from "../state-json.js";
import { evaluateQuorumPolicy, percentageOfParticipants } from "./quorum-evaluator.js";
import { parseQuorumRules, quorumPolicyRules } from "./quorum-rules.js";

// macp.mode.quorum.v1 (modes.md §6).

export type BallotChoice = "Approve" | "Reject" | "Abstain";

export interface ApprovalRequest {
  readonly requestId: string;
  readonly action: string;
  readonly summary: string;
  readonly details: Uint8Array;
  readonly requiredApprovals: number;
  readonly requestedBy: string;
}

export interface Ballot {
  readonly requestId: string;
  readonly choice: BallotChoice;
  readonly sender: string;
  readonly reason: string;
}

export interface QuorumState {
  readonly request: ApprovalRequest | null;
  /** Voter → their one ballot. */
  readonly ballots: ReadonlyMap<string, Ballot>;
}

const BALLOT_SCHEMAS = {
  Approve: quorum.ApprovePayloadSchema,
  Reject: quorum.RejectPayloadSchema,
  Abstain: quorum.AbstainPayloadSchema,
} as const;

type Step = Result<ModeStep<QuorumState>, MacpError>;

export const quorumMode: ModeHandler<QuorumState> = {
  policyRules: quorumPolicyRules,
  onSessionStart(session) {
    if (session.participants.length === 0) {
      return err(invalidEnvelope("a quorum session needs at least one participant"));
    }
    return ok({ request: null, ballots: PersistentMap.empty() });
  },

  // The voter pool is exactly the declared participants.
  authorizeSender(ctx, _state, envelope) {
    return authorizeOrchestrated(ctx.session, envelope, "ApprovalRequest");
  },

  onMessage(ctx, state, envelope) {
    const { session } = ctx;
    switch (envelope.messageType) {
      case "ApprovalRequest":
        return onRequest(session, state, envelope);
      case "Approve":
      case "Reject":
      case "Abstain":
        return onBallot(state, envelope, envelope.messageType);
      case COMMITMENT:
        return onCommitment(session, state, envelope);
      default:
        return err(invalidEnvelope(`quorum mode does not accept ${envelope.messageType}`));
    }
  },

  encodeState(state): JsonValue {
    const request = state.request;
    return {
      request:
        request === null
          ? null
          : {
              request_id: request.requestId,
              action: request.action,
              summary: request.summary,
              details: bytesJson(request.details),
              required_approvals: request.requiredApprovals,
              requested_by: request.requestedBy,
            },
      ballots: mapJson(state.ballots, (ballot) => ({
        request_id: ballot.requestId,
        choice: ballot.choice,
        sender: ballot.sender,
        reason: ballot.reason,
      })),
    };
  },
};

/**
 * The approvals readiness asks for (modes.md §6.5): a policy threshold above 0
 * replaces the request's `required_approvals`; percentages are on a 0–100 scale,
 * other types are truncated counts.
 */
export function requiredApprovals(session: SessionView, request: ApprovalRequest): number {
  const { type, value } = rulesOrDefaults(parseQuorumRules, session.policy.rules).threshold;
  if (value <= 0) return request.requiredApprovals;
  return type === "percentage"
    ? percentageOfParticipants(value, session.participants.length)
    : Math.trunc(value);
}

export interface QuorumTally {
  readonly approvals: number;
  readonly rejections: number;
  readonly abstentions: number;
}

export function tallyBallots(state: QuorumState): QuorumTally {
  let approvals = 0;
  let rejections = 0;
  let abstentions = 0;
  for (const ballot of state.ballots.values()) {
    if (ballot.choice === "Approve") approvals++;
    else if (ballot.choice === "Reject") rejections++;
    else abstentions++;
  }
  return { approvals, rejections, abstentions };
}

/** Ready once the threshold is reached or can no longer be reached. */
export function isQuorumReady(session: SessionView, state: QuorumState): boolean {
  if (state.request === null) return false;
  const required = requiredApprovals(session, state.request);
  const { approvals } = tallyBallots(state);
  const remaining = session.participants.length - state.ballots.size;
  return approvals >= required || approvals + remaining < required;
}

function onRequest(session: SessionView, state: QuorumState, envelope: Envelope): Step {
  return requireInitiator(session, envelope.sender, "ApprovalRequest")
    .andThen(() =>
      decodePayload(quorum.ApprovalRequestPayloadSchema, envelope.payload, "ApprovalRequest"),
    )
    .andThen((payload) => {
      if (state.request !== null) {
        return err(invalidEnvelope("the session already has its approval request"));
      }
      if (payload.requestId === "") return err(invalidEnvelope("request_id must not be empty"));
      if (payload.requiredApprovals === 0) {
        return err(invalidEnvelope("required_approvals must be at least 1"));
      }
      // Checked against the payload even when a policy threshold will override it.
      if (payload.requiredApprovals > session.participants.length) {
        return err(
          invalidEnvelope(
            `required_approvals ${payload.requiredApprovals} exceeds the ${session.participants.length} participant(s)`,
          ),
        );
      }
      const request: ApprovalRequest = {
        requestId: payload.requestId,
        action: payload.action,
        summary: payload.summary,
        details: payload.details.slice(),
        requiredApprovals: payload.requiredApprovals,
        requestedBy: envelope.sender,
      };
      return ok({ state: { ...state, request } });
    });
}

function onBallot(state: QuorumState, envelope: Envelope, choice: BallotChoice): Step {
  return decodePayload(BALLOT_SCHEMAS[choice], envelope.payload, choice).andThen((payload) => {
    if (state.request === null) return err(invalidEnvelope("no approval request to vote on"));
    if (payload.requestId !== state.request.requestId) {
      return err(invalidEnvelope(`unknown request '${payload.requestId}'`));
    }
    if (state.ballots.has(envelope.sender)) {
      return err(invalidEnvelope(`${envelope.sender} has already cast a ballot`));
    }
    const ballot: Ballot = {
      requestId: payload.requestId,
      choice,
      sender: envelope.sender,
      reason: payload.reason,
    };
    return ok({ state: { ...state, ballots: withEntry(state.ballots, envelope.sender, ballot) } });
  });
}

function onCommitment(session: SessionView, state: QuorumState, envelope: Envelope): Step {
  return validateCommitmentPayload(session, envelope.payload).andThen((commitment) => {
    if (!isQuorumReady(session, state)) {
      return err(invalidEnvelope("the approval threshold is neither reached nor unreachable yet"));
    }
    const verdict = evaluateQuorumPolicy(session.policy, {
      ...tallyBallots(state),
      participantCount: session.participants.length,
      outcomePositive: commitment.outcomePositive,
    });
    return verdictToResult(verdict).map(() => ({
      state,
      resolution: envelope.payload.slice(),
    }));
  });
}
