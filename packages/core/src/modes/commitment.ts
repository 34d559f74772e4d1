import { type CommitmentPayload, CommitmentPayloadSchema, type Envelope } from "@macp/proto";
import { err, type Result } from "neverthrow";
import type { MacpError } from "../errors.js";
import type { SessionView } from "../mode-handler.js";
import { cachedCommitmentRules } from "../policy/policy-rules.js";
import {
  decodePayload,
  forbidden,
  includesParticipant,
  invalidEnvelope,
  isBlank,
  OK_VOID,
  requireDeclaredParticipant,
  requireInitiator,
} from "./mode-support.js";

// Commitment handling shared by every mode (modes.md §0.4–§0.6, core.md CMT-1..CMT-6).

export const COMMITMENT = "Commitment";

const NEGATIVE_ACTION_SUFFIXES = ["rejected", "failed", "declined"];
const POSITIVE_ACTION_SUFFIXES = ["selected", "accepted", "completed", "approved"];

/**
 * The `outcome_positive` an action's suffix demands, or undefined when the
 * action leaves it open (modes.md §0.4 #6). A plain suffix test, as in the
 * reference runtime: "foo.unaccepted" counts as positive.
 */
export function requiredOutcomeForAction(action: string): boolean | undefined {
  if (NEGATIVE_ACTION_SUFFIXES.some((suffix) => action.endsWith(suffix))) return false;
  if (POSITIVE_ACTION_SUFFIXES.some((suffix) => action.endsWith(suffix))) return true;
  return undefined;
}

/**
 * Whether `sender` may commit under the session's bound policy (modes.md §0.5).
 * Also the rule for who besides the initiator may cancel, suspend or resume.
 */
export function isCommitmentAuthority(session: SessionView, sender: string): boolean {
  const rules = cachedCommitmentRules(session.policy.rules);
  switch (rules.authority) {
    case "any_participant":
      return sender === session.initiator || includesParticipant(session.participants, sender);
    case "designated_role":
      // Ids are matched literally; the initiator gets no implicit right here.
      return rules.designatedRoles.includes(sender);
    default:
      // "initiator_only" and any unknown authority.
      return sender === session.initiator;
  }
}

/** The policy-driven Commitment authority check of the standard modes. */
export function checkCommitmentAuthority(
  session: SessionView,
  sender: string,
): Result<void, MacpError> {
  return isCommitmentAuthority(session, sender)
    ? OK_VOID
    : err(forbidden(`${sender} is not authorized to commit under the session's policy`));
}

/** multi_round and passthrough ignore the policy: only the initiator commits. */
export function checkInitiatorCommitment(
  session: SessionView,
  sender: string,
): Result<void, MacpError> {
  return sender === session.initiator
    ? OK_VOID
    : err(forbidden("only the session initiator may commit in this mode"));
}

/**
 * Decodes and validates a Commitment payload against the session (CMT-1..CMT-6),
 * in the reference runtime's order. Every failure is INVALID_ENVELOPE.
 */
export function validateCommitmentPayload(
  session: SessionView,
  payload: Uint8Array,
): Result<CommitmentPayload, MacpError> {
  const decoded = decodePayload(CommitmentPayloadSchema, payload, COMMITMENT);
  if (decoded.isErr()) return decoded;
  const commitment = decoded.value;
  const blank = isBlank(commitment.commitmentId)
    ? "commitment_id"
    : isBlank(commitment.action)
      ? "action"
      : isBlank(commitment.authorityScope)
        ? "authority_scope"
        : isBlank(commitment.reason)
          ? "reason"
          : undefined;
  if (blank !== undefined) return err(invalidEnvelope(`Commitment ${blank} must not be blank`));
  if (commitment.modeVersion !== session.modeVersion) {
    return err(
      invalidEnvelope(
        `Commitment mode_version '${commitment.modeVersion}' does not match the session's '${session.modeVersion}'`,
      ),
    );
  }
  if (commitment.configurationVersion !== session.configurationVersion) {
    return err(
      invalidEnvelope(
        `Commitment configuration_version '${commitment.configurationVersion}' does not match the session's '${session.configurationVersion}'`,
      ),
    );
  }
  // Empty defers to the bound policy. A session with no recorded policy id
  // (an old replay) accepts any value, as the reference runtime does.
  if (
    commitment.policyVersion !== "" &&
    session.policyVersion !== "" &&
    commitment.policyVersion !== session.policyVersion
  ) {
    return err(
      invalidEnvelope(
        `Commitment policy_version '${commitment.policyVersion}' does not match the session's '${session.policyVersion}'`,
      ),
    );
  }
  const supersedes = commitment.supersedes;
  if (
    supersedes !== undefined &&
    (isBlank(supersedes.sessionId) || isBlank(supersedes.commitmentHash))
  ) {
    return err(invalidEnvelope("Commitment supersedes needs session_id and commitment_hash"));
  }
  const requiredOutcome = requiredOutcomeForAction(commitment.action);
  if (requiredOutcome !== undefined && commitment.outcomePositive !== requiredOutcome) {
    return err(
      invalidEnvelope(
        `Commitment action '${commitment.action}' requires outcome_positive=${requiredOutcome}`,
      ),
    );
  }
  return decoded;
}

/**
 * The sender rule of the orchestrated modes (task, quorum, handoff): one
 * opening message type that only the initiator sends (whether or not it is a
 * participant), Commitment by commitment authority, and everything else by
 * declared participants.
 */
export function authorizeOrchestrated(
  session: SessionView,
  envelope: Envelope,
  initiatorOnlyType: string,
): Result<void, MacpError> {
  switch (envelope.messageType) {
    case initiatorOnlyType:
      return requireInitiator(session, envelope.sender, initiatorOnlyType);
    case COMMITMENT:
      return checkCommitmentAuthority(session, envelope.sender);
    default:
      return requireDeclaredParticipant(session, envelope.sender, envelope.messageType);
  }
}
