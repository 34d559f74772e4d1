import { create, toBinary } from "@bufbuild/protobuf";
import { type Envelope, handoff } from "@macp/proto";
import { err, ok, type Result } from "neverthrow";
import type { MacpError } from "../../errors.js";
import type { JsonValue } from "../../json.js";
import type {
  DueMessage,
  MessageContext,
  ModeHandler,
  ModeStep,
  SessionView,
} from "../../mode-handler.js";
import { rulesOrDefaults } from "../../policy/policy-rules.js";
import { verdictToResult } from "../../policy/policy-verdict.js";
import { authorizeOrchestrated, COMMITMENT, validateCommitmentPayload } from "../commitment.js";
import {
  decodePayload,
  forbidden,
  invalidEnvelope,
  isDeclaredParticipant,
  requireInitiator,
  withEntry,
} from "../mode-support.js";
import { PersistentMap } from "../persistent-map.js";
import { bytesJson, mapJson } from "../state-json.js";
import { evaluateHandoffPolicy } from "./handoff-evaluator.js";
import { handoffPolicyRules, parseHandoffRules } from "./handoff-rules.js";

// macp.mode.handoff.v1 (modes.md §5), with the implicit accept of RFC-MACP-0012 §4.5.

export type HandoffDisposition = "Offered" | "Accepted" | "Declined";

export interface HandoffOffer {
  readonly handoffId: string;
  readonly targetParticipant: string;
  readonly scope: string;
  readonly reason: string;
  readonly offeredBy: string;
  readonly disposition: HandoffDisposition;
  readonly acceptedBy: string | null;
  readonly declinedBy: string | null;
  readonly outcomeReason: string | null;
  /** The runtime's acceptance clock for the offer, never the envelope timestamp. */
  readonly offeredAtMs: number;
}

export interface HandoffContextEntry {
  readonly contentType: string;
  readonly context: Uint8Array;
  readonly sender: string;
}

export interface HandoffState {
  readonly offers: ReadonlyMap<string, HandoffOffer>;
  /** handoff id → the context documents sent for it, in order. */
  readonly contexts: ReadonlyMap<string, readonly HandoffContextEntry[]>;
}

/** The outcome_reason of an offer accepted because its target stayed silent. */
export const IMPLICIT_ACCEPT_REASON = "implicit accept (timeout)";

/** The message id of the synthetic accept for an offer; deterministic so replay and dedup agree. */
export function implicitAcceptMessageId(handoffId: string): string {
  return `implicit-accept:${handoffId}`;
}

type Step = Result<ModeStep<HandoffState>, MacpError>;

export const handoffMode: ModeHandler<HandoffState> = {
  policyRules: handoffPolicyRules,
  onSessionStart(session) {
    if (session.participants.length < 2 || !isDeclaredParticipant(session, session.initiator)) {
      return err(
        invalidEnvelope(
          "a handoff session needs at least two participants, the initiator among them",
        ),
      );
    }
    return ok({ offers: PersistentMap.empty(), contexts: PersistentMap.empty() });
  },

  authorizeSender(ctx, _state, envelope) {
    return authorizeOrchestrated(ctx.session, envelope, "HandoffOffer");
  },

  onMessage(ctx, state, envelope) {
    switch (envelope.messageType) {
      case "HandoffOffer":
        return onOffer(ctx, state, envelope);
      case "HandoffContext":
        return onContext(state, envelope);
      case "HandoffAccept":
        return onAccept(ctx, state, envelope);
      case "HandoffDecline":
        return onDecline(state, envelope);
      case COMMITMENT:
        return onCommitment(ctx, state, envelope);
      default:
        return err(invalidEnvelope(`handoff mode does not accept ${envelope.messageType}`));
    }
  },

  encodeState(state): JsonValue {
    return {
      offers: mapJson(state.offers, (offer) => ({
        handoff_id: offer.handoffId,
        target_participant: offer.targetParticipant,
        scope: offer.scope,
        reason: offer.reason,
        offered_by: offer.offeredBy,
        disposition: offer.disposition,
        accepted_by: offer.acceptedBy,
        declined_by: offer.declinedBy,
        outcome_reason: offer.outcomeReason,
        offered_at_ms: offer.offeredAtMs,
      })),
      contexts: mapJson(state.contexts, (entries) =>
        entries.map((entry) => ({
          content_type: entry.contentType,
          context: bytesJson(entry.context),
          sender: entry.sender,
        })),
      ),
    };
  },

  nextDueAt(session, state) {
    const timeout = implicitAcceptTimeoutMs(session);
    if (timeout === 0) return undefined;
    let earliest: number | undefined;
    for (const offer of pendingTimedOffers(state)) {
      const dueAt = offer.offeredAtMs + timeout;
      if (earliest === undefined || dueAt < earliest) earliest = dueAt;
    }
    return earliest;
  },

  dueMessages(session, state, nowMs) {
    const timeout = implicitAcceptTimeoutMs(session);
    if (timeout === 0) return [];
    return pendingTimedOffers(state)
      .filter((offer) => isImplicitlyAccepted(offer, timeout, nowMs))
      .map(
        (offer): DueMessage => ({
          messageType: "HandoffAccept",
          messageId: implicitAcceptMessageId(offer.handoffId),
          sender: offer.targetParticipant,
          payload: toBinary(
            handoff.HandoffAcceptPayloadSchema,
            create(handoff.HandoffAcceptPayloadSchema, {
              handoffId: offer.handoffId,
              acceptedBy: offer.targetParticipant,
              reason: IMPLICIT_ACCEPT_REASON,
              implicit: true,
            }),
          ),
        }),
      );
  },
};

function implicitAcceptTimeoutMs(session: SessionView): number {
  return rulesOrDefaults(parseHandoffRules, session.policy.rules).acceptance
    .implicitAcceptTimeoutMs;
}

/** Offers still waiting for their target and carrying an acceptance-clock time. */
function pendingTimedOffers(state: HandoffState): HandoffOffer[] {
  return [...state.offers.values()].filter(
    (offer) => offer.disposition === "Offered" && offer.offeredAtMs > 0,
  );
}

/** Due once `clock − offered_at_ms ≥ timeout` (≥, not >), on the runtime's acceptance clock. */
function isImplicitlyAccepted(offer: HandoffOffer, timeoutMs: number, clockMs: number): boolean {
  return clockMs - offer.offeredAtMs >= timeoutMs;
}

function onOffer(ctx: MessageContext, state: HandoffState, envelope: Envelope): Step {
  const { session } = ctx;
  return requireInitiator(session, envelope.sender, "HandoffOffer")
    .andThen(() =>
      decodePayload(handoff.HandoffOfferPayloadSchema, envelope.payload, "HandoffOffer"),
    )
    .andThen((payload) => {
      if (payload.handoffId === "") return err(invalidEnvelope("handoff_id must not be empty"));
      if (payload.targetParticipant === "") {
        return err(invalidEnvelope("target_participant must not be empty"));
      }
      if (state.offers.has(payload.handoffId)) {
        return err(invalidEnvelope(`handoff id '${payload.handoffId}' is already used`));
      }
      if (!isDeclaredParticipant(session, payload.targetParticipant)) {
        return err(invalidEnvelope(`target '${payload.targetParticipant}' is not a participant`));
      }
      if (payload.targetParticipant === envelope.sender) {
        return err(invalidEnvelope("a handoff cannot target its own sender"));
      }
      const offers = [...state.offers.values()];
      if (offers.some((offer) => offer.disposition === "Offered")) {
        return err(invalidEnvelope("another handoff offer is still pending"));
      }
      if (offers.some((offer) => offer.disposition === "Accepted")) {
        return err(invalidEnvelope("responsibility has already been handed off"));
      }
      const offer: HandoffOffer = {
        handoffId: payload.handoffId,
        targetParticipant: payload.targetParticipant,
        scope: payload.scope,
        reason: payload.reason,
        offeredBy: envelope.sender,
        disposition: "Offered",
        acceptedBy: null,
        declinedBy: null,
        outcomeReason: null,
        offeredAtMs: ctx.acceptedAtMs,
      };
      return ok({ state: { ...state, offers: withEntry(state.offers, offer.handoffId, offer) } });
    });
}

function onContext(state: HandoffState, envelope: Envelope): Step {
  return decodePayload(
    handoff.HandoffContextPayloadSchema,
    envelope.payload,
    "HandoffContext",
  ).andThen((payload) => {
    const offer = state.offers.get(payload.handoffId);
    if (offer === undefined) return err(invalidEnvelope(`unknown handoff '${payload.handoffId}'`));
    if (envelope.sender !== offer.offeredBy) {
      return err(forbidden("only the offering party may send handoff context"));
    }
    // No disposition check: late context is supplementary documentation (RFC-0010 §2.1).
    const entry: HandoffContextEntry = {
      contentType: payload.contentType,
      context: payload.context.slice(),
      sender: envelope.sender,
    };
    const entries = [...(state.contexts.get(payload.handoffId) ?? []), entry];
    return ok({
      state: { ...state, contexts: withEntry(state.contexts, payload.handoffId, entries) },
    });
  });
}

/** The checks Accept and Decline share: a known offer, answered by its target, still open. */
function respondableOffer(
  state: HandoffState,
  handoffId: string,
  sender: string,
  namedResponder: string,
  responderField: string,
): Result<HandoffOffer, MacpError> {
  const offer = state.offers.get(handoffId);
  if (offer === undefined) return err(invalidEnvelope(`unknown handoff '${handoffId}'`));
  if (sender !== offer.targetParticipant) {
    return err(forbidden("only the offer's target may answer it"));
  }
  if (namedResponder !== "" && namedResponder !== sender) {
    return err(invalidEnvelope(`${responderField} '${namedResponder}' is not the sender`));
  }
  if (offer.disposition !== "Offered") {
    return err(invalidEnvelope(`handoff '${handoffId}' is already ${offer.disposition}`));
  }
  return ok(offer);
}

function onAccept(ctx: MessageContext, state: HandoffState, envelope: Envelope): Step {
  return decodePayload(
    handoff.HandoffAcceptPayloadSchema,
    envelope.payload,
    "HandoffAccept",
  ).andThen((payload) => {
    // Only the runtime speaks for a silent target; clients must never claim it.
    if (payload.implicit && !ctx.synthetic) {
      return err(invalidEnvelope("implicit must not be set on a client HandoffAccept"));
    }
    return respondableOffer(
      state,
      payload.handoffId,
      envelope.sender,
      payload.acceptedBy,
      "accepted_by",
    ).andThen((offer) => {
      if (payload.implicit) {
        const timeout = implicitAcceptTimeoutMs(ctx.session);
        if (timeout === 0 || !isImplicitlyAccepted(offer, timeout, ctx.acceptedAtMs)) {
          return err(
            invalidEnvelope(`handoff '${offer.handoffId}' is not due for implicit accept`),
          );
        }
      }
      const accepted: HandoffOffer = {
        ...offer,
        disposition: "Accepted",
        acceptedBy: envelope.sender,
        outcomeReason: payload.reason,
      };
      return ok({
        state: { ...state, offers: withEntry(state.offers, offer.handoffId, accepted) },
      });
    });
  });
}

function onDecline(state: HandoffState, envelope: Envelope): Step {
  return decodePayload(
    handoff.HandoffDeclinePayloadSchema,
    envelope.payload,
    "HandoffDecline",
  ).andThen((payload) =>
    respondableOffer(
      state,
      payload.handoffId,
      envelope.sender,
      payload.declinedBy,
      "declined_by",
    ).map((offer) => {
      const declined: HandoffOffer = {
        ...offer,
        disposition: "Declined",
        declinedBy: envelope.sender,
        outcomeReason: payload.reason,
      };
      return { state: { ...state, offers: withEntry(state.offers, offer.handoffId, declined) } };
    }),
  );
}

/**
 * Accepts every offer whose timeout elapsed by `clockMs` (modes.md §5.6): the
 * lazy form of the implicit accept, for offers whose timer the runtime has not
 * processed before this Commitment.
 */
function applyLazyImplicitAccepts(
  session: SessionView,
  state: HandoffState,
  clockMs: number,
): HandoffState {
  const timeout = implicitAcceptTimeoutMs(session);
  if (timeout === 0) return state;
  const due = pendingTimedOffers(state).filter((offer) =>
    isImplicitlyAccepted(offer, timeout, clockMs),
  );
  if (due.length === 0) return state;
  const offers = new Map(state.offers);
  for (const offer of due) {
    offers.set(offer.handoffId, {
      ...offer,
      disposition: "Accepted",
      acceptedBy: offer.targetParticipant,
      outcomeReason: IMPLICIT_ACCEPT_REASON,
    });
  }
  return { ...state, offers };
}

function onCommitment(ctx: MessageContext, state: HandoffState, envelope: Envelope): Step {
  const { session } = ctx;
  return validateCommitmentPayload(session, envelope.payload).andThen((commitment) => {
    const settled = applyLazyImplicitAccepts(session, state, ctx.acceptedAtMs);
    const ready = [...settled.offers.values()].some(
      (offer) => offer.disposition === "Accepted" || offer.disposition === "Declined",
    );
    if (!ready) return err(invalidEnvelope("no handoff offer has been accepted or declined yet"));
    const verdict = evaluateHandoffPolicy(session.policy, {
      outcomePositive: commitment.outcomePositive,
    });
    return verdictToResult(verdict).map(() => ({
      state: settled,
      resolution: envelope.payload.slice(),
    }));
  });
}
