import { type DescMessage, fromBinary, type MessageShape } from "@bufbuild/protobuf";
import { err, ok, type Result } from "neverthrow";
import { ErrorCode, type MacpError, macpError } from "../errors.js";
import type { SessionView } from "../mode-handler.js";
import { PersistentMap } from "./persistent-map.js";

// Small helpers every mode handler shares.

/** The one successful `Result<void>`: a check that passes allocates nothing. */
export const OK_VOID: Result<void, MacpError> = ok(undefined);

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
  return includesParticipant(session.participants, sender);
}

/** Below this many participants a scan is cheaper than a set lookup. */
const SCAN_LIMIT = 16;
/** A set per participants list (a session's list never changes), built on first use. */
const participantSets = new WeakMap<readonly string[], ReadonlySet<string>>();

/**
 * `participants.includes(id)`, in O(1) for large sessions: up to 1,000
 * participants may be declared, and every message checks its sender.
 */
export function includesParticipant(participants: readonly string[], id: string): boolean {
  if (participants.length <= SCAN_LIMIT) return participants.includes(id);
  let set = participantSets.get(participants);
  if (set === undefined) {
    set = new Set(participants);
    participantSets.set(participants, set);
  }
  return set.has(id);
}

/** The default sender rule of the standard modes: only declared participants speak. */
export function requireDeclaredParticipant(
  session: SessionView,
  sender: string,
  messageType: string,
): Result<void, MacpError> {
  return isDeclaredParticipant(session, sender)
    ? OK_VOID
    : err(forbidden(`${sender} is not a declared participant and may not send ${messageType}`));
}

export function requireInitiator(
  session: SessionView,
  sender: string,
  messageType: string,
): Result<void, MacpError> {
  return sender === session.initiator
    ? OK_VOID
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

/**
 * A new map with one entry set; the given map is left as it was. A
 * {@link PersistentMap} makes this O(1); any other map is copied.
 */
export function withEntry<K, V>(map: ReadonlyMap<K, V>, key: K, value: V): ReadonlyMap<K, V> {
  if (map instanceof PersistentMap) return map.set(key, value);
  const next = new Map(map);
  next.set(key, value);
  return next;
}
