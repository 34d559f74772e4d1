import { type Envelope, proposal } from "@macp/proto";
import { err, ok, type Result } from "neverthrow";
import { ErrorCode, type MacpError, macpError } from "../../errors.js";
import type { JsonValue } from "../../json.js";
import type { ModeHandler, ModeStep, SessionView } from "../../mode-handler.js";
import { rulesOrDefaults } from "../../policy/policy-rules.js";
import { verdictToResult } from "../../policy/policy-verdict.js";
import { COMMITMENT, checkCommitmentAuthority, validateCommitmentPayload } from "../commitment.js";
import {
  decodePayload,
  forbidden,
  invalidEnvelope,
  isBlank,
  requireDeclaredParticipant,
  withEntry,
} from "../mode-support.js";
import { PersistentMap } from "../persistent-map.js";
import { bytesJson, mapJson } from "../state-json.js";
import { evaluateProposalPolicy } from "./proposal-evaluator.js";
import { type ProposalRules, parseProposalRules, proposalPolicyRules } from "./proposal-rules.js";

// macp.mode.proposal.v1 (modes.md §3).

export type ProposalPhase = "Negotiating" | "Converged" | "TerminalRejected" | "Committed";
export type ProposalDisposition = "Live" | "Withdrawn";

export interface ProposalRecord {
  readonly proposalId: string;
  readonly title: string;
  readonly summary: string;
  readonly details: Uint8Array;
  readonly tags: readonly string[];
  readonly proposer: string;
  /** Set for counter-proposals. */
  readonly supersedesProposalId: string | null;
  readonly disposition: ProposalDisposition;
}

export interface ProposalTerminalRejection {
  readonly proposalId: string;
  readonly sender: string;
  readonly reason: string;
}

export interface ProposalRejection extends ProposalTerminalRejection {
  readonly terminal: boolean;
}

export interface ProposalState {
  readonly proposals: ReadonlyMap<string, ProposalRecord>;
  /** Participant → the proposal it accepted most recently. */
  readonly accepts: ReadonlyMap<string, string>;
  readonly terminalRejections: readonly ProposalTerminalRejection[];
  /** Every Reject, kept for audit even when a withdrawal lifts its terminal effect. */
  readonly rejections: readonly ProposalRejection[];
  readonly phase: ProposalPhase;
}

type Step = Result<ModeStep<ProposalState>, MacpError>;

export const proposalMode: ModeHandler<ProposalState> = {
  policyRules: proposalPolicyRules,
  onSessionStart(session) {
    if (session.participants.length === 0) {
      return err(invalidEnvelope("a proposal session needs at least one participant"));
    }
    return ok({
      proposals: PersistentMap.empty(),
      accepts: PersistentMap.empty(),
      terminalRejections: [],
      rejections: [],
      phase: "Negotiating",
    });
  },

  authorizeSender(ctx, _state, envelope) {
    if (envelope.messageType === COMMITMENT) {
      return checkCommitmentAuthority(ctx.session, envelope.sender);
    }
    return requireDeclaredParticipant(ctx.session, envelope.sender, envelope.messageType);
  },

  onMessage(ctx, state, envelope) {
    if (state.phase === "Committed") {
      return err(
        macpError(ErrorCode.SESSION_NOT_OPEN, "the proposal session is already committed"),
      );
    }
    const { session } = ctx;
    const rules = rulesOrDefaults(parseProposalRules, session.policy.rules);
    const step = (() => {
      switch (envelope.messageType) {
        case "Proposal":
          return onProposal(state, envelope);
        case "CounterProposal":
          return onCounterProposal(state, envelope, rules);
        case "Accept":
          return onAccept(state, envelope);
        case "Reject":
          return onReject(state, envelope, rules);
        case "Withdraw":
          return onWithdraw(state, envelope);
        case COMMITMENT:
          return onCommitment(session, state, envelope, rules);
        default:
          return err(invalidEnvelope(`proposal mode does not accept ${envelope.messageType}`));
      }
    })();
    // The phase follows every accepted message; Commitment sets its own.
    return step.map(({ state: next, resolution }) =>
      resolution === undefined
        ? { state: { ...next, phase: computePhase(next, session, rules) } }
        : { state: next, resolution },
    );
  },

  encodeState(state): JsonValue {
    return {
      proposals: mapJson(state.proposals, (record) => ({
        proposal_id: record.proposalId,
        title: record.title,
        summary: record.summary,
        details: bytesJson(record.details),
        tags: [...record.tags],
        proposer: record.proposer,
        supersedes_proposal_id: record.supersedesProposalId,
        disposition: record.disposition,
      })),
      accepts: mapJson(state.accepts, (proposalId) => proposalId),
      terminal_rejections: state.terminalRejections.map((rejection) => ({
        proposal_id: rejection.proposalId,
        sender: rejection.sender,
        reason: rejection.reason,
      })),
      rejections: state.rejections.map((rejection) => ({
        proposal_id: rejection.proposalId,
        sender: rejection.sender,
        reason: rejection.reason,
        terminal: rejection.terminal,
      })),
      phase: state.phase,
    };
  },
};

/** The phase in priority order (modes.md §3.4): terminal rejection, then convergence. */
export function computePhase(
  state: ProposalState,
  session: SessionView,
  rules: ProposalRules,
): ProposalPhase {
  if (state.terminalRejections.length > 0) return "TerminalRejected";
  for (const record of state.proposals.values()) {
    if (record.disposition === "Live" && converges(record, state, session, rules)) {
      return "Converged";
    }
  }
  return "Negotiating";
}

function converges(
  record: ProposalRecord,
  state: ProposalState,
  session: SessionView,
  rules: ProposalRules,
): boolean {
  const acceptedIt = (participant: string) => state.accepts.get(participant) === record.proposalId;
  switch (rules.acceptance.criterion) {
    case "counterparty":
      return session.participants
        .filter((participant) => participant !== record.proposer)
        .every(acceptedIt);
    case "initiator":
      return acceptedIt(session.initiator);
    default:
      // "all_parties", and any criterion this runtime does not know.
      return session.participants.length > 0 && session.participants.every(acceptedIt);
  }
}

function onProposal(state: ProposalState, envelope: Envelope): Step {
  return decodePayload(proposal.ProposalPayloadSchema, envelope.payload, "Proposal").andThen(
    (payload) => {
      if (isBlank(payload.proposalId)) return err(invalidEnvelope("proposal_id must not be blank"));
      if (state.proposals.has(payload.proposalId)) {
        return err(invalidEnvelope(`proposal id '${payload.proposalId}' is already used`));
      }
      const record: ProposalRecord = {
        proposalId: payload.proposalId,
        title: payload.title,
        summary: payload.summary,
        details: payload.details.slice(),
        tags: [...payload.tags],
        proposer: envelope.sender,
        supersedesProposalId: null,
        disposition: "Live",
      };
      return ok({
        state: { ...state, proposals: withEntry(state.proposals, record.proposalId, record) },
      });
    },
  );
}

function onCounterProposal(state: ProposalState, envelope: Envelope, rules: ProposalRules): Step {
  return decodePayload(
    proposal.CounterProposalPayloadSchema,
    envelope.payload,
    "CounterProposal",
  ).andThen((payload) => {
    if (isBlank(payload.proposalId)) return err(invalidEnvelope("proposal_id must not be blank"));
    if (isBlank(payload.supersedesProposalId)) {
      return err(invalidEnvelope("supersedes_proposal_id must not be blank"));
    }
    if (state.proposals.has(payload.proposalId)) {
      return err(invalidEnvelope(`proposal id '${payload.proposalId}' is already used`));
    }
    // Existence is enough: a withdrawn proposal may still be superseded.
    if (!state.proposals.has(payload.supersedesProposalId)) {
      return err(invalidEnvelope(`unknown proposal '${payload.supersedesProposalId}'`));
    }
    const maxRounds = rules.counterProposal.maxRounds;
    if (maxRounds > 0 && counterProposalCount(state) >= maxRounds) {
      // The reference runtime refuses at submission with INVALID_ENVELOPE, not POLICY_DENIED.
      return err(invalidEnvelope(`counter_proposal.max_rounds (${maxRounds}) reached`));
    }
    const record: ProposalRecord = {
      proposalId: payload.proposalId,
      title: payload.title,
      summary: payload.summary,
      details: payload.details.slice(),
      tags: [],
      proposer: envelope.sender,
      supersedesProposalId: payload.supersedesProposalId,
      disposition: "Live",
    };
    return ok({
      state: { ...state, proposals: withEntry(state.proposals, record.proposalId, record) },
    });
  });
}

function counterProposalCount(state: ProposalState): number {
  let count = 0;
  for (const record of state.proposals.values()) {
    if (record.supersedesProposalId !== null) count++;
  }
  return count;
}

function requireLive(state: ProposalState, proposalId: string): Result<void, MacpError> {
  const record = state.proposals.get(proposalId);
  if (record === undefined) return err(invalidEnvelope(`unknown proposal '${proposalId}'`));
  if (record.disposition !== "Live") {
    return err(invalidEnvelope(`proposal '${proposalId}' has been withdrawn`));
  }
  return ok(undefined);
}

function onAccept(state: ProposalState, envelope: Envelope): Step {
  return decodePayload(proposal.AcceptPayloadSchema, envelope.payload, "Accept").andThen(
    (payload) =>
      requireLive(state, payload.proposalId).map(() => ({
        state: {
          ...state,
          accepts: withEntry(state.accepts, envelope.sender, payload.proposalId),
        },
      })),
  );
}

function onReject(state: ProposalState, envelope: Envelope, rules: ProposalRules): Step {
  return decodePayload(proposal.RejectPayloadSchema, envelope.payload, "Reject").andThen(
    (payload) =>
      requireLive(state, payload.proposalId).map(() => {
        const terminal = payload.terminal || rules.rejection.terminalOnAnyReject;
        const rejection: ProposalRejection = {
          proposalId: payload.proposalId,
          sender: envelope.sender,
          reason: payload.reason,
          terminal,
        };
        // A Reject leaves the sender's own earlier accept in place.
        return {
          state: {
            ...state,
            rejections: [...state.rejections, rejection],
            terminalRejections: terminal
              ? [
                  ...state.terminalRejections,
                  {
                    proposalId: payload.proposalId,
                    sender: envelope.sender,
                    reason: payload.reason,
                  },
                ]
              : state.terminalRejections,
          },
        };
      }),
  );
}

function onWithdraw(state: ProposalState, envelope: Envelope): Step {
  return decodePayload(proposal.WithdrawPayloadSchema, envelope.payload, "Withdraw").andThen(
    (payload) => {
      if (isBlank(payload.proposalId)) return err(invalidEnvelope("proposal_id must not be blank"));
      const record = state.proposals.get(payload.proposalId);
      if (record === undefined) {
        return err(invalidEnvelope(`unknown proposal '${payload.proposalId}'`));
      }
      if (record.proposer !== envelope.sender) {
        return err(forbidden(`only the proposer may withdraw proposal '${payload.proposalId}'`));
      }
      if (record.disposition === "Withdrawn") {
        return err(invalidEnvelope(`proposal '${payload.proposalId}' is already withdrawn`));
      }
      const accepts = new Map(
        [...state.accepts].filter(([, proposalId]) => proposalId !== payload.proposalId),
      );
      return ok({
        state: {
          ...state,
          proposals: withEntry(state.proposals, record.proposalId, {
            ...record,
            disposition: "Withdrawn" as const,
          }),
          accepts,
          // The audit list keeps them; only their terminal effect is lifted.
          terminalRejections: state.terminalRejections.filter(
            (rejection) => rejection.proposalId !== payload.proposalId,
          ),
        },
      });
    },
  );
}

function onCommitment(
  session: SessionView,
  state: ProposalState,
  envelope: Envelope,
  rules: ProposalRules,
): Step {
  return validateCommitmentPayload(session, envelope.payload).andThen((commitment) => {
    const phase = computePhase(state, session, rules);
    if (phase !== "Converged" && phase !== "TerminalRejected") {
      return err(invalidEnvelope("no proposal has converged and none was terminally rejected yet"));
    }
    const verdict = evaluateProposalPolicy(session.policy, {
      counterProposalCount: counterProposalCount(state),
      outcomePositive: commitment.outcomePositive,
    });
    return verdictToResult(verdict).map(() => ({
      state: { ...state, phase: "Committed" as const },
      resolution: envelope.payload.slice(),
    }));
  });
}
