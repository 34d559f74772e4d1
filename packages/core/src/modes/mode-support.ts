import { type DescMessage, fromBinary, type MessageShape } from "@bufbuild/protobuf";
import { err, ok, type Result } from "neverthrow";
import { ErrorCode, type MacpError, macpError } from "../errors.js";
import type { SessionView } from "../mode-handler.js";

// Small helpers every mode handler shares.

export function invalidEnvelope(message: string): MacpError {
  return macpError(ErrorCode.INVALID_ENVELOPE, message);
}

export function forbidden(message: string): MacpError {
  return macpError(ErrorCode.FORBIDDEN, message);
}

/** A policy-controlled refusal outside the Commitment evaluator (e.g. task reassignment). */
export function policyDenied(reason: string): MacpError {
  return macpError(ErrorCode.POLICY_DENIED, reason, [reason]);
}

export function isDeclaredParticipant(session: SessionView, sender: string): boolean {
  return session.participants.includes(sender);
}

/** The default sender rule of the standard modes: only declared participants speak. */
export function requireDeclaredParticipant(
  session: SessionView,
  sender: string,
  messageType: string,
): Result<void, MacpError> {
  return isDeclaredParticipant(session, sender)
    ? ok(undefined)
    : err(forbidden(`${sender} is not a declared participant and may not send ${messageType}`));
}

export function requireInitiator(
  session: SessionView,
  sender: string,
  messageType: string,
): Result<void, MacpError> {
  return sender === session.initiator
    ? ok(undefined)
    : err(forbidden(`only the session initiator may send ${messageType}`));
}

/** Decodes a mode payload; anything protobuf cannot read is INVALID_ENVELOPE. */
export function decodePayload<Desc extends DescMessage>(
  schema: Desc,
  payload: Uint8Array,
  messageType: string,
): Result<MessageShape<Desc>, MacpError> {
  try {
    return ok(fromBinary(schema, payload));
  } catch (cause) {
    const detail = cause instanceof Error ? cause.message : String(cause);
    return err(invalidEnvelope(`${messageType} payload cannot be decoded: ${detail}`));
  }
}

export function isBlank(value: string): boolean {
  return value.trim() === "";
}

/** A new Map with one entry set; the given map is left as it was. */
export function withEntry<K, V>(map: ReadonlyMap<K, V>, key: K, value: V): ReadonlyMap<K, V> {
  const next = new Map(map);
  next.set(key, value);
  return next;
}
