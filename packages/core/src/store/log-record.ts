import type { Envelope, ModeDescriptor } from "@macp/proto";
import type { PolicyDefinition } from "../policy/policy-definition.js";

/**
 * What a session bound at SessionStart, recorded on the SessionStart entry so
 * that replay never consults live configuration (registries, clock, defaults).
 */
export interface SessionBinding {
  /** The bound mode version (the payload's, or the descriptor's if the payload left it empty). */
  readonly modeVersion: string;
  /** The resolved policy, copied in full. */
  readonly policy: PolicyDefinition;
  /** The mode's descriptor at start, so sessions of dynamic modes replay after a restart. */
  readonly modeDescriptor: ModeDescriptor;
  /** Whether the mode was strict at start. */
  readonly strict: boolean;
  /** The computed deadline (core.md D-3). */
  readonly expiresAtMs: number;
  /** The resolved cumulative suspension cap. */
  readonly maxSuspendMs: number;
  /** Semantics revision of the kernel that accepted the start (1). */
  readonly semanticsRev: number;
}

/** An accepted session envelope. The n-th incoming record of a session has sequence n. */
export interface IncomingRecord {
  readonly kind: "incoming";
  /** The envelope as accepted, with the authenticated sender. */
  readonly envelope: Envelope;
  /** Runtime acceptance time (ms); the mode clock on replay. */
  readonly receivedAtMs: number;
  /** Present on the SessionStart record only. */
  readonly binding?: SessionBinding;
}

/** The runtime's own history entries. Never streamed and never numbered. */
export type InternalRecordType =
  | "TtlExpired"
  | "SessionCancel"
  | "SessionSuspend"
  | "SessionResume";

export interface InternalRecord {
  readonly kind: "internal";
  readonly type: InternalRecordType;
  readonly receivedAtMs: number;
  /** The encoded SessionCancelPayload / SessionSuspendPayload / SessionResumePayload; empty for TtlExpired. */
  readonly payload: Uint8Array;
}

export type LogRecord = IncomingRecord | InternalRecord;
