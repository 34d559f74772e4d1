import {
  type DescMessage,
  fromBinary,
  fromJsonString,
  toBinary,
  toJsonString,
} from "@bufbuild/protobuf";
import {
  CommitmentPayloadSchema,
  decision,
  handoff,
  multiRound,
  ProgressPayloadSchema,
  proposal,
  quorum,
  SessionCancelPayloadSchema,
  SessionResumePayloadSchema,
  SessionStartPayloadSchema,
  SessionSuspendPayloadSchema,
  SignalPayloadSchema,
  task,
} from "@macp/proto";

// Which protobuf message each envelope's payload is, so tools can show payload
// fields instead of bytes. Imports only @macp/proto, so the browser page
// bundles the same table the server decodes with.

/** Payload types every mode shares (core.md). */
const CORE_PAYLOADS: Readonly<Record<string, DescMessage>> = {
  SessionStart: SessionStartPayloadSchema,
  Commitment: CommitmentPayloadSchema,
  Signal: SignalPayloadSchema,
  Progress: ProgressPayloadSchema,
  SessionCancel: SessionCancelPayloadSchema,
  SessionSuspend: SessionSuspendPayloadSchema,
  SessionResume: SessionResumePayloadSchema,
};

/** The standard modes' own payload types, by mode name. */
const MODE_PAYLOADS: Readonly<Record<string, Readonly<Record<string, DescMessage>>>> = {
  "macp.mode.decision.v1": {
    Proposal: decision.ProposalPayloadSchema,
    Evaluation: decision.EvaluationPayloadSchema,
    Objection: decision.ObjectionPayloadSchema,
    Vote: decision.VotePayloadSchema,
  },
  "macp.mode.proposal.v1": {
    Proposal: proposal.ProposalPayloadSchema,
    CounterProposal: proposal.CounterProposalPayloadSchema,
    Accept: proposal.AcceptPayloadSchema,
    Reject: proposal.RejectPayloadSchema,
    Withdraw: proposal.WithdrawPayloadSchema,
  },
  "macp.mode.task.v1": {
    TaskRequest: task.TaskRequestPayloadSchema,
    TaskAccept: task.TaskAcceptPayloadSchema,
    TaskReject: task.TaskRejectPayloadSchema,
    TaskUpdate: task.TaskUpdatePayloadSchema,
    TaskComplete: task.TaskCompletePayloadSchema,
    TaskFail: task.TaskFailPayloadSchema,
  },
  "macp.mode.handoff.v1": {
    HandoffOffer: handoff.HandoffOfferPayloadSchema,
    HandoffContext: handoff.HandoffContextPayloadSchema,
    HandoffAccept: handoff.HandoffAcceptPayloadSchema,
    HandoffDecline: handoff.HandoffDeclinePayloadSchema,
  },
  "macp.mode.quorum.v1": {
    ApprovalRequest: quorum.ApprovalRequestPayloadSchema,
    Approve: quorum.ApprovePayloadSchema,
    Reject: quorum.RejectPayloadSchema,
    Abstain: quorum.AbstainPayloadSchema,
  },
  "ext.multi_round.v1": {
    Contribute: multiRound.ContributePayloadSchema,
  },
};

/** The payload schema of `messageType` in `mode`, or undefined for types this table does not know (extension modes). */
export function payloadSchemaOf(mode: string, messageType: string): DescMessage | undefined {
  return MODE_PAYLOADS[mode]?.[messageType] ?? CORE_PAYLOADS[messageType];
}

/** A payload as text a person can read. */
export interface DecodedPayload {
  /** Protobuf JSON of the payload; for unknown types the payload itself when it is JSON; else empty. */
  readonly json: string;
  /** The schema's full name, e.g. "macp.modes.decision.v1.VotePayload"; empty when none applied. */
  readonly typeName: string;
}

const NOTHING: DecodedPayload = { json: "", typeName: "" };

/**
 * Decodes an envelope's payload with the schema of its message type. Never
 * throws: a payload that does not decode (which the runtime refuses anyway)
 * comes back as NOTHING, and bytes of an unknown type are shown only if they
 * are JSON text (extension modes commonly send JSON).
 */
export function decodePayload(
  mode: string,
  messageType: string,
  payload: Uint8Array,
): DecodedPayload {
  const schema = payloadSchemaOf(mode, messageType);
  if (schema !== undefined) {
    try {
      return { json: toJsonString(schema, fromBinary(schema, payload)), typeName: schema.typeName };
    } catch {
      return NOTHING;
    }
  }
  if (payload.length === 0) return NOTHING;
  try {
    const text = new TextDecoder("utf-8", { fatal: true }).decode(payload);
    JSON.parse(text);
    return { json: text, typeName: "" };
  } catch {
    return NOTHING;
  }
}

/**
 * Encodes protobuf JSON as the payload of `messageType` in `mode`; for types
 * the table does not know, the JSON text itself (as UTF-8) is the payload.
 * Throws when the JSON does not fit the schema.
 */
export function encodePayload(mode: string, messageType: string, json: string): Uint8Array {
  const schema = payloadSchemaOf(mode, messageType);
  if (schema === undefined) return new TextEncoder().encode(json);
  return toBinary(schema, fromJsonString(schema, json));
}
