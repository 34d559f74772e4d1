import type { ModeDescriptor } from "@macp/proto";
import { err, ok } from "neverthrow";
import type { ModeHandler } from "../../mode-handler.js";
import { COMMITMENT, checkInitiatorCommitment, validateCommitmentPayload } from "../commitment.js";
import { invalidEnvelope } from "../mode-support.js";
import { requireParticipantIfDeclared } from "../multi-round/multi-round-mode.js";
import { serializeModeState } from "../state-json.js";

/**
 * The handler behind dynamically registered extension modes (modes.md §8). The
 * runtime knows nothing of their semantics: it admits the descriptor's message
 * types, keeps the latest payload as opaque state, and resolves on a valid
 * Commitment from the initiator, with no readiness rule and no policy.
 */
export function createPassthroughMode(descriptor: ModeDescriptor): ModeHandler<Uint8Array> {
  const allowedTypes: ReadonlySet<string> = new Set(
    descriptor.messageTypes.filter((messageType) => messageType !== "SessionStart"),
  );
  return {
    onSessionStart() {
      return ok(new Uint8Array(0));
    },

    authorizeSender(ctx, _state, envelope) {
      if (envelope.messageType === COMMITMENT) {
        return checkInitiatorCommitment(ctx.session, envelope.sender);
      }
      return requireParticipantIfDeclared(ctx.session, envelope.sender, envelope.messageType);
    },

    onMessage(ctx, state, envelope) {
      if (!allowedTypes.has(envelope.messageType)) {
        return err(invalidEnvelope(`this extension mode does not accept ${envelope.messageType}`));
      }
      if (envelope.messageType !== COMMITMENT) {
        // No history: the state is whatever was said last.
        return ok({ state: envelope.payload.slice() });
      }
      return validateCommitmentPayload(ctx.session, envelope.payload).map((commitment) => ({
        state,
        resolution: serializeModeState({
          action: commitment.action,
          commitment_id: commitment.commitmentId,
        }),
      }));
    },

    encodeState(state) {
      // A copy, so a caller that writes into the bytes cannot change the session.
      return state.slice();
    },
  };
}
