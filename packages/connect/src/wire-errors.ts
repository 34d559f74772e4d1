// The one place where a MacpError becomes something on the wire: a NACK Ack, a
// gRPC status (ConnectError), or an inline MACPError on a session stream.
// docs/reference/errors.md documents this table; keep the two in step.

import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, encodeBinaryHeader } from "@connectrpc/connect";
import { ErrorCode, errorDetails, type MacpError } from "@macp/core";
import { type Ack, AckSchema, type MACPError, MACPErrorSchema, SessionState } from "@macp/proto";

/** The binary trailer that carries POLICY_DENIED reasons as JSON `{"reasons": [...]}` (core.md §19.2). */
export const ERROR_DETAILS_TRAILER = "macp-error-details-bin";

/** Where an error goes when the RPC can answer either with an Ack or with a status. */
type AckOrStatus = "nack" | "status";

/** How one error code travels on each channel. */
interface WireRule {
  /** The gRPC status when the error is answered with a status (core.md §19.2, ERR-6). */
  readonly status: Code;
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
  readonly streamTermination: Code;
}

function rule(status: Code, send: AckOrStatus, control: AckOrStatus, stream?: Code): WireRule {
  return { status, send, control, streamTermination: stream ?? status };
}

/** The wire rule of every error code. The switch is exhaustive: a new ErrorCode does not compile until it has a row. */
function wireRule(code: ErrorCode): WireRule {
  switch (code) {
    case ErrorCode.UNAUTHENTICATED:
      return rule(Code.Unauthenticated, "nack", "status");
    case ErrorCode.FORBIDDEN:
      return rule(Code.PermissionDenied, "nack", "status");
    case ErrorCode.SESSION_NOT_FOUND:
      return rule(Code.NotFound, "nack", "status");
    case ErrorCode.SESSION_NOT_OPEN:
      return rule(Code.FailedPrecondition, "nack", "nack", Code.InvalidArgument);
    case ErrorCode.SESSION_ALREADY_EXISTS:
      return rule(Code.AlreadyExists, "nack", "nack");
    case ErrorCode.INVALID_ENVELOPE:
      return rule(Code.FailedPrecondition, "nack", "nack", Code.InvalidArgument);
    case ErrorCode.UNSUPPORTED_PROTOCOL_VERSION:
      return rule(Code.FailedPrecondition, "nack", "nack", Code.InvalidArgument);
    case ErrorCode.MODE_NOT_SUPPORTED:
      return rule(Code.FailedPrecondition, "nack", "nack", Code.InvalidArgument);
    case ErrorCode.PAYLOAD_TOO_LARGE:
      return rule(Code.ResourceExhausted, "nack", "nack");
    case ErrorCode.RATE_LIMITED:
      return rule(Code.ResourceExhausted, "nack", "nack");
    case ErrorCode.INVALID_SESSION_ID:
      return rule(Code.InvalidArgument, "nack", "nack");
    case ErrorCode.INTERNAL_ERROR:
      return rule(Code.Internal, "nack", "nack");
    case ErrorCode.UNKNOWN_POLICY_VERSION:
      return rule(Code.FailedPrecondition, "nack", "nack", Code.InvalidArgument);
    case ErrorCode.POLICY_DENIED:
      return rule(Code.FailedPrecondition, "nack", "nack", Code.InvalidArgument);
    case ErrorCode.INVALID_POLICY_DEFINITION:
      return rule(Code.InvalidArgument, "nack", "nack");
    // Not registry codes: they describe the request as a whole, so no Ack can carry them.
    case ErrorCode.INVALID_REQUEST:
      return rule(Code.InvalidArgument, "status", "status");
    case ErrorCode.NOT_FOUND:
      return rule(Code.NotFound, "nack", "status");
    case ErrorCode.READ_ONLY:
      return rule(Code.FailedPrecondition, "nack", "nack", Code.InvalidArgument);
    case ErrorCode.SUBSCRIBER_LAGGED:
      return rule(Code.ResourceExhausted, "nack", "nack");
    default:
      return unreachable(code);
  }
}

function unreachable(code: never): never {
  throw new Error(`unmapped error code ${String(code)}`);
}

/** The status message: `"<CODE>: <text>"`, so clients see the registry code whatever the status. */
function statusMessage(error: MacpError): string {
  const prefix = `${error.code}:`;
  return error.message.startsWith(prefix) ? error.message : `${prefix} ${error.message}`;
}

function connectError(error: MacpError, code: Code): ConnectError {
  // The SDKs read POLICY_DENIED reasons from this trailer when there is no Ack to carry them.
  const metadata: Record<string, string> | undefined =
    error.reasons === undefined
      ? undefined
      : { [ERROR_DETAILS_TRAILER]: encodeBinaryHeader(errorDetails(error)) };
  return new ConnectError(statusMessage(error), code, metadata, undefined, error);
}

/** The gRPC status of an error on an RPC that answers errors with a status (every RPC but Send and the control RPCs). */
export function statusCodeOf(code: ErrorCode): Code {
  return wireRule(code).status;
}

/** The status error of an RPC that answers errors with a status (core.md §19.2, ERR-6, ERR-7). */
export function toStatusError(error: MacpError): ConnectError {
  return connectError(error, wireRule(error.code).status);
}

/** The status that ends a StreamSession call for a terminating error (STR-10). */
export function toStreamTerminationError(error: MacpError): ConnectError {
  return connectError(error, wireRule(error.code).streamTermination);
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

/**
 * Send's answer to a refused envelope: the NACK to return. Throws the
 * ConnectError instead when the protocol answers with a status (no envelope).
 */
export function sendFailure(error: MacpError, context: NackContext): Ack {
  if (wireRule(error.code).send === "status") throw toStatusError(error);
  return nackAck(error, context);
}

/**
 * Cancel/Suspend/Resume's answer to a refusal: UNAUTHENTICATED, SESSION_NOT_FOUND
 * and FORBIDDEN (the checks before the state operation) are statuses; state
 * errors are NACKs with an empty message_id (CTL-2, CTL-4). Throws for statuses.
 */
export function controlFailure(error: MacpError, sessionId: string, now: number): Ack {
  if (wireRule(error.code).control === "status") throw toStatusError(error);
  return nackAck(error, { sessionId, messageId: "", now });
}
