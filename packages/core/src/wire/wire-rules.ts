// The one place where a MacpError's route to the wire is decided: a NACK Ack,
// a gRPC status, or an inline MACPError on a session stream. It is pure data
// and protobuf-es messages, so every transport (Connect in @macp/connect,
// @grpc/grpc-js in @macp/grpc) applies the same table and only wraps a
// WireStatus in its own error type. docs/reference/errors.md documents this
// table; keep the two in step.

import { create } from "@bufbuild/protobuf";
import { type Ack, AckSchema, type MACPError, MACPErrorSchema, SessionState } from "@macp/proto";
import { ErrorCode, errorDetails, type MacpError } from "../errors.js";

/** gRPC status codes, as numbered by the gRPC protocol (Connect's `Code` uses the same numbers). */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;
export type GrpcStatus = (typeof GrpcStatus)[keyof typeof GrpcStatus];

/** The binary trailer that carries POLICY_DENIED reasons as JSON `{"reasons": [...]}` (core.md §19.2). */
export const ERROR_DETAILS_TRAILER = "macp-error-details-bin";

/** Where an error goes when the RPC can answer either with an Ack or with a status. */
export type AckOrStatus = "nack" | "status";

/** How one error code travels on each channel. */
export interface WireRule {
  /** The gRPC status when the error is answered with a status (core.md §19.2, ERR-6). */
  readonly status: GrpcStatus;
  /** Send (ERR-3): nearly everything is a NACK; only a request without an envelope is a status. */
  readonly send: AckOrStatus;
  /** CancelSession / SuspendSession / ResumeSession (CTL-2, ERR-4). */
  readonly control: AckOrStatus;
  /**
   * The status that ends a StreamSession call. The reference runtime only ever
   * terminates a stream with UNAUTHENTICATED, INTERNAL, RESOURCE_EXHAUSTED,
   * INVALID_ARGUMENT, NOT_FOUND or ALREADY_EXISTS (STR-10): FAILED_PRECONDITION
   * is reserved for inline errors, and the TS SDK reads a terminal
   * FAILED_PRECONDITION as "resume below compacted history" (ERR-8). So every
   * code whose status would be FAILED_PRECONDITION (e.g. the STR-8 pre-checks:
   * mode mismatch, session not open) ends the call with INVALID_ARGUMENT, as
   * [RT] does.
   */
  readonly streamTermination: GrpcStatus;
}

function rule(
  status: GrpcStatus,
  send: AckOrStatus,
  control: AckOrStatus,
  stream?: GrpcStatus,
): WireRule {
  return { status, send, control, streamTermination: stream ?? status };
}

const S = GrpcStatus;

/** The wire rule of every error code. The switch is exhaustive: a new ErrorCode does not compile until it has a row. */
export function wireRuleOf(code: ErrorCode): WireRule {
  switch (code) {
    case ErrorCode.UNAUTHENTICATED:
      return rule(S.UNAUTHENTICATED, "nack", "status");
    case ErrorCode.FORBIDDEN:
      return rule(S.PERMISSION_DENIED, "nack", "status");
    case ErrorCode.SESSION_NOT_FOUND:
      return rule(S.NOT_FOUND, "nack", "status");
    case ErrorCode.SESSION_NOT_OPEN:
      return rule(S.FAILED_PRECONDITION, "nack", "nack", S.INVALID_ARGUMENT);
    case ErrorCode.SESSION_ALREADY_EXISTS:
      return rule(S.ALREADY_EXISTS, "nack", "nack");
    case ErrorCode.INVALID_ENVELOPE:
      return rule(S.FAILED_PRECONDITION, "nack", "nack", S.INVALID_ARGUMENT);
    case ErrorCode.UNSUPPORTED_PROTOCOL_VERSION:
      return rule(S.FAILED_PRECONDITION, "nack", "nack", S.INVALID_ARGUMENT);
    case ErrorCode.MODE_NOT_SUPPORTED:
      return rule(S.FAILED_PRECONDITION, "nack", "nack", S.INVALID_ARGUMENT);
    case ErrorCode.PAYLOAD_TOO_LARGE:
      return rule(S.RESOURCE_EXHAUSTED, "nack", "nack");
    case ErrorCode.RATE_LIMITED:
      return rule(S.RESOURCE_EXHAUSTED, "nack", "nack");
    case ErrorCode.INVALID_SESSION_ID:
      return rule(S.INVALID_ARGUMENT, "nack", "nack");
    case ErrorCode.INTERNAL_ERROR:
      return rule(S.INTERNAL, "nack", "nack");
    case ErrorCode.UNKNOWN_POLICY_VERSION:
      return rule(S.FAILED_PRECONDITION, "nack", "nack", S.INVALID_ARGUMENT);
    case ErrorCode.POLICY_DENIED:
      return rule(S.FAILED_PRECONDITION, "nack", "nack", S.INVALID_ARGUMENT);
    case ErrorCode.INVALID_POLICY_DEFINITION:
      return rule(S.INVALID_ARGUMENT, "nack", "nack");
    // Not registry codes: they describe the request as a whole, so no Ack can carry them.
    case ErrorCode.INVALID_REQUEST:
      return rule(S.INVALID_ARGUMENT, "status", "status");
    case ErrorCode.NOT_FOUND:
      return rule(S.NOT_FOUND, "nack", "status");
    case ErrorCode.READ_ONLY:
      return rule(S.FAILED_PRECONDITION, "nack", "nack", S.INVALID_ARGUMENT);
    case ErrorCode.SUBSCRIBER_LAGGED:
      return rule(S.RESOURCE_EXHAUSTED, "nack", "nack");
    default:
      return unreachable(code);
  }
}

function unreachable(code: never): never {
  throw new Error(`unmapped error code ${String(code)}`);
}

/** A gRPC status to end a call with, before a transport wraps it in its own error type. */
export interface WireStatus {
  readonly code: GrpcStatus;
  /** `"<CODE>: <text>"`, so clients see the registry code whatever the status. */
  readonly message: string;
  /** The {@link ERROR_DETAILS_TRAILER} value (POLICY_DENIED reasons), when there is one. */
  readonly details: Uint8Array | undefined;
  /** The error it came from. */
  readonly cause: MacpError;
}

function wireStatus(error: MacpError, code: GrpcStatus): WireStatus {
  const prefix = `${error.code}:`;
  const message = error.message.startsWith(prefix) ? error.message : `${prefix} ${error.message}`;
  // The SDKs read POLICY_DENIED reasons from the trailer when there is no Ack to carry them.
  const details = error.reasons === undefined ? undefined : errorDetails(error);
  return { code, message, details, cause: error };
}

/** The status of an RPC that answers errors with a status (core.md §19.2, ERR-6, ERR-7). */
export function statusOf(error: MacpError): WireStatus {
  return wireStatus(error, wireRuleOf(error.code).status);
}

/** The status that ends a StreamSession call for a terminating error (STR-10). */
export function streamTerminationOf(error: MacpError): WireStatus {
  return wireStatus(error, wireRuleOf(error.code).streamTermination);
}

/** What a NACK echoes of the refused request. */
export interface NackContext {
  readonly sessionId: string;
  readonly messageId: string;
  /** `accepted_at_unix_ms`: the runtime answers with the time of the answer, success or not (§3.3 step 5). */
  readonly now: number;
}

/** A NACK: `{ok:false, session_state: UNSPECIFIED, error}` echoing the request's ids (ERR-3, CTL-4). */
export function nackAck(error: MacpError, context: NackContext): Ack {
  return create(AckSchema, {
    ok: false,
    duplicate: false,
    messageId: context.messageId,
    sessionId: context.sessionId,
    acceptedAtUnixMs: BigInt(context.now),
    sessionState: SessionState.UNSPECIFIED,
    error: toWireError(error, context.sessionId, context.messageId),
  });
}

/** A MACPError message: the registry code, the human text, and JSON reasons in `details` for POLICY_DENIED. */
export function toWireError(error: MacpError, sessionId: string, messageId: string): MACPError {
  return create(MACPErrorSchema, {
    code: error.code,
    message: error.message,
    sessionId,
    messageId,
    details: errorDetails(error),
  });
}

/** How an RPC that may answer with an Ack refuses: a NACK to return, or a status to end the call with. */
export type Refusal =
  | { readonly kind: "nack"; readonly ack: Ack }
  | { readonly kind: "status"; readonly status: WireStatus };

/** Send's answer to a refused envelope: a NACK, or a status when there is no envelope to NACK. */
export function sendRefusal(error: MacpError, context: NackContext): Refusal {
  if (wireRuleOf(error.code).send === "status") return { kind: "status", status: statusOf(error) };
  return { kind: "nack", ack: nackAck(error, context) };
}

/**
 * Cancel/Suspend/Resume's answer to a refusal: UNAUTHENTICATED, SESSION_NOT_FOUND
 * and FORBIDDEN (the checks before the state operation) are statuses; state
 * errors are NACKs with an empty message_id (CTL-2, CTL-4).
 */
export function controlRefusal(error: MacpError, sessionId: string, now: number): Refusal {
  if (wireRuleOf(error.code).control === "status") {
    return { kind: "status", status: statusOf(error) };
  }
  return { kind: "nack", ack: nackAck(error, { sessionId, messageId: "", now }) };
}
