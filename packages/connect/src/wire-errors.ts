// MacpErrors as Connect errors. The rules (which status, NACK or status) are
// @macp/core's wire table (wireRuleOf), shared with every other transport;
// this module only wraps its WireStatus in a ConnectError.

import { type Code, ConnectError, encodeBinaryHeader } from "@connectrpc/connect";
import type { ErrorCode, MacpError } from "@macp/core";
import {
  controlRefusal,
  ERROR_DETAILS_TRAILER,
  type NackContext,
  type Refusal,
  sendRefusal,
  statusOf,
  streamTerminationOf,
  type WireStatus,
  wireRuleOf,
} from "@macp/core/wire";
import type { Ack } from "@macp/proto";

export { ERROR_DETAILS_TRAILER, type NackContext, nackAck, toWireError } from "@macp/core/wire";

/** A core WireStatus as a ConnectError (Connect's Code numbers are gRPC's). */
export function toConnectError(status: WireStatus): ConnectError {
  const metadata: Record<string, string> | undefined =
    status.details === undefined
      ? undefined
      : { [ERROR_DETAILS_TRAILER]: encodeBinaryHeader(status.details) };
  return new ConnectError(status.message, status.code as Code, metadata, undefined, status.cause);
}

/** The gRPC status of an error on an RPC that answers errors with a status (every RPC but Send and the control RPCs). */
export function statusCodeOf(code: ErrorCode): Code {
  return wireRuleOf(code).status as Code;
}

/** The status error of an RPC that answers errors with a status (core.md §19.2, ERR-6, ERR-7). */
export function toStatusError(error: MacpError): ConnectError {
  return toConnectError(statusOf(error));
}

/** The status that ends a StreamSession call for a terminating error (STR-10). */
export function toStreamTerminationError(error: MacpError): ConnectError {
  return toConnectError(streamTerminationOf(error));
}

function ackOrThrow(refusal: Refusal): Ack {
  if (refusal.kind === "status") throw toConnectError(refusal.status);
  return refusal.ack;
}

/**
 * Send's answer to a refused envelope: the NACK to return. Throws the
 * ConnectError instead when the protocol answers with a status (no envelope).
 */
export function sendFailure(error: MacpError, context: NackContext): Ack {
  return ackOrThrow(sendRefusal(error, context));
}

/**
 * Cancel/Suspend/Resume's answer to a refusal: UNAUTHENTICATED, SESSION_NOT_FOUND
 * and FORBIDDEN (the checks before the state operation) are statuses; state
 * errors are NACKs with an empty message_id (CTL-2, CTL-4). Throws for statuses.
 */
export function controlFailure(error: MacpError, sessionId: string, now: number): Ack {
  return ackOrThrow(controlRefusal(error, sessionId, now));
}
