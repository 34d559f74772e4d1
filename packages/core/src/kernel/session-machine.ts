import {
  type Envelope,
  SessionLifecycleEvent_EventType as EventType,
  type SessionStartPayload,
  SessionState,
} from "@macp/proto";
import { err, ok, type Result } from "neverthrow";
import type { MacpError } from "../errors.js";
import type { MessageContext, ModeEntry, ModeStep, SessionView } from "../mode-handler.js";
import type {
  IncomingRecord,
  InternalRecordType,
  LogRecord,
  SessionBinding,
} from "../store/log-record.js";
import { compareStrings, Session } from "./session.js";

// The session machine: how one log record changes one session, and what that
// causes. Live processing evaluates a message, appends its record, then
// applies it; replay evaluates and applies each record of the log. Both use the
// same apply functions, so a rebuilt session equals the live one by
// construction. These functions read nothing but their arguments (no clock, no
// registry, no store) and change nothing but the session they are given.

/** An accepted envelope with its 1-based position in the session's history. */
export interface SequencedEnvelope {
  readonly sequence: number;
  readonly envelope: Envelope;
}

/** What applying one record caused, for the live path to publish (replay drops it). */
export interface SessionEvents {
  /** The accepted envelope and its sequence number; absent for runtime records. */
  readonly streamed: SequencedEnvelope | undefined;
  /** The lifecycle event the record caused; absent when the state did not change. */
  readonly lifecycle: EventType | undefined;
  /** The resolution bytes, when the record resolved the session. */
  readonly resolution: Uint8Array | undefined;
}

/** A SessionStart the mode accepted: what {@link openSession} needs besides the record. */
export interface SessionOpening {
  readonly view: SessionView;
  readonly start: SessionStartPayload;
  readonly modeState: unknown;
}

/** Ids of messages the runtime injects for a mode (the handoff implicit accept). */
export const SYNTHETIC_MESSAGE_PREFIX = "implicit-accept:";

const NO_EXTENSIONS: readonly string[] = Object.freeze([]);

/** What a mode sees of a session, from its SessionStart and its binding. */
export function sessionViewOf(
  envelope: Envelope,
  start: SessionStartPayload,
  binding: SessionBinding,
): SessionView {
  return {
    sessionId: envelope.sessionId,
    mode: envelope.mode,
    initiator: envelope.sender,
    participants: start.participants,
    modeVersion: binding.modeVersion,
    configurationVersion: start.configurationVersion,
    policyVersion: binding.policy.policyId,
    policy: binding.policy,
  };
}

/** Asks the mode whether it accepts this SessionStart, and for its initial state. */
export function evaluateStart(
  entry: ModeEntry,
  envelope: Envelope,
  start: SessionStartPayload,
  binding: SessionBinding,
): Result<SessionOpening, MacpError> {
  const view = sessionViewOf(envelope, start, binding);
  const initial = entry.handler.onSessionStart(view, start);
  if (initial.isErr()) return err(initial.error);
  return ok({ view, start, modeState: initial.value });
}

/** Applies a SessionStart record: the new session, and its CREATED event. */
export function openSession(
  opening: SessionOpening,
  entry: ModeEntry,
  record: IncomingRecord & { readonly binding: SessionBinding },
  ordinal: number,
): { readonly session: Session; readonly events: SessionEvents } {
  const { binding } = record;
  const session = new Session(
    opening.view,
    entry.handler,
    binding.modeDescriptor,
    binding.strict,
    record.receivedAtMs,
    binding.expiresAtMs,
    binding.maxSuspendMs,
    opening.start.contextId,
    extensionKeysOf(opening.start),
    ordinal,
    opening.modeState,
  );
  session.seen.add(record.envelope.messageId);
  session.incomingCount = 1;
  session.logLength = 1;
  return {
    session,
    events: {
      streamed: { sequence: 1, envelope: record.envelope },
      lifecycle: EventType.CREATED,
      resolution: undefined,
    },
  };
}

/**
 * Asks the session's mode to accept one message at `acceptedAtMs`: the
 * sender's authorization, then the message itself. Nothing changes.
 */
export function evaluateMessage(
  session: Session,
  envelope: Envelope,
  acceptedAtMs: number,
  synthetic: boolean,
): Result<ModeStep<unknown>, MacpError> {
  const ctx: MessageContext = { session: session.view, acceptedAtMs, synthetic };
  const authorized = session.handler.authorizeSender(ctx, session.modeState, envelope);
  if (authorized.isErr()) return err(authorized.error);
  return session.handler.onMessage(ctx, session.modeState, envelope);
}

/** Applies an accepted envelope whose mode step is known. */
export function applyAccepted(
  session: Session,
  envelope: Envelope,
  step: ModeStep<unknown>,
  atMs: number,
): SessionEvents {
  session.seen.add(envelope.messageId);
  session.incomingCount++;
  session.logLength++;
  session.recordActivity(envelope.sender, atMs);
  session.modeState = step.state;
  let lifecycle: EventType | undefined;
  if (step.resolution !== undefined) {
    session.resolution = step.resolution;
    transition(session, SessionState.RESOLVED, atMs);
    lifecycle = EventType.RESOLVED;
  }
  return {
    streamed: { sequence: session.incomingCount, envelope },
    lifecycle,
    resolution: step.resolution,
  };
}

/** Applies one of the runtime's own records (TTL expiry, cancel, suspend, resume). */
export function applyRuntimeRecord(
  session: Session,
  type: InternalRecordType,
  atMs: number,
): SessionEvents {
  session.logLength++;
  return {
    streamed: undefined,
    lifecycle: applyTransition(session, type, atMs),
    resolution: undefined,
  };
}

/**
 * Applies any record after the SessionStart, evaluating accepted envelopes
 * against the mode first: what replay does with each record. An envelope
 * logged after the session ended only takes its place in the history.
 */
export function applyRecord(session: Session, record: LogRecord): Result<SessionEvents, MacpError> {
  if (record.kind === "internal")
    return ok(applyRuntimeRecord(session, record.type, record.receivedAtMs));
  const envelope = record.envelope;
  if (session.state !== SessionState.OPEN) {
    session.seen.add(envelope.messageId);
    session.incomingCount++;
    session.logLength++;
    return ok({
      streamed: { sequence: session.incomingCount, envelope },
      lifecycle: undefined,
      resolution: undefined,
    });
  }
  const step = evaluateMessage(
    session,
    envelope,
    record.receivedAtMs,
    envelope.messageId.startsWith(SYNTHETIC_MESSAGE_PREFIX),
  );
  if (step.isErr()) return err(step.error);
  return ok(applyAccepted(session, envelope, step.value, record.receivedAtMs));
}

function applyTransition(session: Session, type: InternalRecordType, atMs: number): EventType {
  switch (type) {
    case "TtlExpired":
      stopSuspensionClock(session, atMs);
      transition(session, SessionState.EXPIRED, atMs);
      return EventType.EXPIRED;
    case "SessionCancel":
      stopSuspensionClock(session, atMs);
      transition(session, SessionState.CANCELLED, atMs);
      return EventType.CANCELLED;
    case "SessionSuspend":
      session.suspendedAtMs = atMs;
      transition(session, SessionState.SUSPENDED, atMs);
      return EventType.SUSPENDED;
    case "SessionResume":
      return resume(session, atMs);
  }
}

/** LC-11: adds the suspended time to the deadline, or expires when the cap is crossed. */
function resume(session: Session, atMs: number): EventType {
  const suspendedAt = session.suspendedAtMs ?? atMs;
  const duration = Math.max(0, atMs - suspendedAt);
  session.suspendedTotalMs += duration;
  session.suspendedAtMs = undefined;
  if (session.suspendedTotalMs > session.maxSuspendMs) {
    transition(session, SessionState.EXPIRED, atMs);
    return EventType.EXPIRED;
  }
  session.expiresAtMs += duration;
  transition(session, SessionState.OPEN, atMs);
  return EventType.RESUMED;
}

function stopSuspensionClock(session: Session, atMs: number): void {
  if (session.suspendedAtMs !== undefined) {
    session.suspendedTotalMs = session.suspendedTimeAt(atMs);
  }
}

function transition(session: Session, state: SessionState, atMs: number): void {
  session.state = state;
  if (session.isTerminal) {
    session.endedAtMs = atMs;
    session.suspendedAtMs = undefined;
  }
}

function extensionKeysOf(start: SessionStartPayload): readonly string[] {
  const keys = Object.keys(start.extensions);
  return keys.length === 0 ? NO_EXTENSIONS : keys.sort(compareStrings);
}
