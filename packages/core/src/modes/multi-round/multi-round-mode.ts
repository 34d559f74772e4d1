import { type Envelope, multiRound } from "@macp/proto";
import { err, ok, type Result } from "neverthrow";
import type { MacpError } from "../../errors.js";
import { isJsonObject, type JsonValue } from "../../json.js";
import type { ModeHandler, ModeStep, SessionView } from "../../mode-handler.js";
import { compareByteOrder } from "../../text/byte-order.js";
import { COMMITMENT, checkInitiatorCommitment, validateCommitmentPayload } from "../commitment.js";
import { decodePayload, forbidden, includesParticipant, invalidEnvelope } from "../mode-support.js";
import { mapJson, serializeModeState } from "../state-json.js";

// ext.multi_round.v1 (modes.md §7): participants converge by contributing values
// until all of them hold the same one.

export interface MultiRoundState {
  /** How many times any participant's value changed; not a synchronised round number. */
  readonly round: number;
  readonly participants: readonly string[];
  /** Participant → their current value. */
  readonly contributions: ReadonlyMap<string, string>;
  readonly convergenceType: "all_equal";
  readonly converged: boolean;
}

type Step = Result<ModeStep<MultiRoundState>, MacpError>;

export const multiRoundMode: ModeHandler<MultiRoundState> = {
  onSessionStart(session) {
    if (session.participants.length === 0) {
      return err(invalidEnvelope("a multi-round session needs at least one participant"));
    }
    return ok({
      round: 0,
      participants: [...session.participants],
      contributions: new Map(),
      convergenceType: "all_equal",
      converged: false,
    });
  },

  authorizeSender(ctx, _state, envelope) {
    // The policy's commitment authority does not apply to this mode.
    if (envelope.messageType === COMMITMENT) {
      return checkInitiatorCommitment(ctx.session, envelope.sender);
    }
    return requireParticipantIfDeclared(ctx.session, envelope.sender, envelope.messageType);
  },

  onMessage(ctx, state, envelope) {
    switch (envelope.messageType) {
      case "Contribute":
        return onContribute(state, envelope);
      case COMMITMENT:
        return onCommitment(ctx.session, state, envelope);
      default:
        return err(invalidEnvelope(`multi-round mode does not accept ${envelope.messageType}`));
    }
  },

  encodeState(state): JsonValue {
    return {
      round: state.round,
      participants: [...state.participants],
      contributions: mapJson(state.contributions, (value) => value),
      convergence_type: state.convergenceType,
      converged: state.converged,
    };
  },
};

/** Declared participants only, or anyone when the session declared none. */
export function requireParticipantIfDeclared(
  session: SessionView,
  sender: string,
  messageType: string,
): Result<void, MacpError> {
  if (session.participants.length === 0 || includesParticipant(session.participants, sender)) {
    return ok(undefined);
  }
  return err(forbidden(`${sender} is not a declared participant and may not send ${messageType}`));
}

/**
 * A contribution's value. Legacy clients send JSON `{"value": "..."}`, newer
 * ones the ContributePayload protobuf; JSON is tried first, as the reference
 * runtime does, and extra JSON fields are ignored.
 */
export function parseContribution(payload: Uint8Array): Result<string, MacpError> {
  if (payload.length === 0) return err(invalidEnvelope("Contribute payload is empty"));
  const fromJson = jsonContribution(payload);
  if (fromJson !== undefined) return ok(fromJson);
  return decodePayload(multiRound.ContributePayloadSchema, payload, "Contribute").map(
    (contribution) => contribution.value,
  );
}

function jsonContribution(payload: Uint8Array): string | undefined {
  try {
    const parsed: unknown = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(payload));
    if (isJsonObject(parsed) && typeof parsed.value === "string") return parsed.value;
  } catch {
    // Not UTF-8 JSON: the protobuf form is tried next.
  }
  return undefined;
}

function onContribute(state: MultiRoundState, envelope: Envelope): Step {
  if (state.converged) {
    return err(invalidEnvelope("the participants have converged; no more contributions"));
  }
  return parseContribution(envelope.payload).map((value) => {
    if (state.contributions.get(envelope.sender) === value) return { state };
    const contributions = new Map(state.contributions);
    contributions.set(envelope.sender, value);
    return {
      state: {
        ...state,
        round: state.round + 1,
        contributions,
        converged: hasConverged(state.participants, contributions),
      },
    };
  });
}

function hasConverged(
  participants: readonly string[],
  contributions: ReadonlyMap<string, string>,
): boolean {
  if (!participants.every((participant) => contributions.has(participant))) return false;
  return new Set(contributions.values()).size <= 1;
}

function onCommitment(session: SessionView, state: MultiRoundState, envelope: Envelope): Step {
  // Readiness comes before payload validation in this mode.
  if (!state.converged) {
    return err(invalidEnvelope("the participants have not converged yet"));
  }
  return validateCommitmentPayload(session, envelope.payload).map(() => ({
    state,
    resolution: multiRoundResolution(state),
  }));
}

/** The resolution is JSON about the converged value, not the Commitment bytes. */
export function multiRoundResolution(state: MultiRoundState): Uint8Array {
  const firstContributor = [...state.contributions.keys()].sort(compareByteOrder)[0];
  const convergedValue =
    firstContributor === undefined ? null : (state.contributions.get(firstContributor) ?? null);
  return serializeModeState({
    converged_value: convergedValue,
    round: state.round,
    final: mapJson(state.contributions, (value) => value),
  });
}
