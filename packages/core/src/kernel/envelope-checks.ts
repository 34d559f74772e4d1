import type { Envelope, SessionStartPayload } from "@macp/proto";
import { err, ok, type Result } from "neverthrow";
import { ErrorCode, type MacpError, macpError } from "../errors.js";

export const PROTOCOL_VERSION = "1.0";
export const MAX_TTL_MS = 86_400_000;
export const MAX_PARTICIPANTS = 1000;

/** Message types only the runtime may write into a session's history (core.md ENV-14, D-22). */
const RUNTIME_ONLY_TYPES = new Set([
  "SessionCancel",
  "SessionSuspend",
  "SessionResume",
  "TtlExpired",
  "Checkpoint",
]);

export function isBlank(value: string): boolean {
  return value.trim().length === 0;
}

const OK: Result<void, MacpError> = ok(undefined);

/** The shape checks ENV-1..ENV-6, run before authentication. */
export function checkEnvelopeShape(
  envelope: Envelope,
  maxPayloadBytes: number,
): Result<void, MacpError> {
  if (envelope.macpVersion !== PROTOCOL_VERSION) {
    return err(
      macpError(
        ErrorCode.UNSUPPORTED_PROTOCOL_VERSION,
        `macp_version must be "${PROTOCOL_VERSION}", got "${envelope.macpVersion}"`,
      ),
    );
  }
  if (envelope.messageType === "") {
    return err(macpError(ErrorCode.INVALID_ENVELOPE, "message_type is required"));
  }
  if (envelope.messageId === "") {
    return err(macpError(ErrorCode.INVALID_ENVELOPE, "message_id is required"));
  }
  if (envelope.messageType === "Signal") {
    if (envelope.sessionId !== "" || !isBlank(envelope.mode)) {
      return err(
        macpError(ErrorCode.INVALID_ENVELOPE, "a Signal must have an empty session_id and mode"),
      );
    }
  } else if (envelope.messageType === "Progress" && envelope.sessionId === "") {
    if (!isBlank(envelope.mode)) {
      return err(
        macpError(ErrorCode.INVALID_ENVELOPE, "an ambient Progress must have an empty mode"),
      );
    }
  } else if (envelope.messageType !== "Progress") {
    if (envelope.sessionId === "") {
      return err(macpError(ErrorCode.INVALID_ENVELOPE, "session_id is required"));
    }
    if (isBlank(envelope.mode)) {
      return err(macpError(ErrorCode.INVALID_ENVELOPE, "mode is required"));
    }
  }
  if (envelope.payload.length > maxPayloadBytes) {
    return err(
      macpError(
        ErrorCode.PAYLOAD_TOO_LARGE,
        `payload is ${envelope.payload.length} bytes; the limit is ${maxPayloadBytes}`,
      ),
    );
  }
  return OK;
}

export function isRuntimeOnlyType(messageType: string): boolean {
  return RUNTIME_ONLY_TYPES.has(messageType);
}

const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const CANONICAL_UUID_V4_V7 =
  /^[0-9a-f]{8}-[0-9a-f]{4}-[47][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const OPAQUE_ID = /^[A-Za-z0-9_-]{22,}$/;

/**
 * SessionStart id rule (core.md SS-2): a canonical lowercase UUID v4/v7, or an
 * opaque token of at least 22 characters from [A-Za-z0-9_-]. A string that is a
 * UUID but not a canonical v4/v7 one is refused outright.
 */
export function checkSessionId(sessionId: string): Result<void, MacpError> {
  // The common case first: one test accepts a canonical UUID.
  if (sessionId.length === 36 && CANONICAL_UUID_V4_V7.test(sessionId)) return OK;
  if (sessionId.length === 36 && UUID.test(sessionId)) {
    return err(
      macpError(
        ErrorCode.INVALID_SESSION_ID,
        "session_id must be a lowercase UUID v4 or v7, or an opaque id of 22+ characters from [A-Za-z0-9_-]",
      ),
    );
  }
  if (OPAQUE_ID.test(sessionId)) return OK;
  return err(
    macpError(
      ErrorCode.INVALID_SESSION_ID,
      "session_id must be a lowercase UUID v4 or v7, or an opaque id of 22+ characters from [A-Za-z0-9_-]",
    ),
  );
}

const MAX_TTL_MS_BIG = BigInt(MAX_TTL_MS);

export function checkTtl(ttlMs: bigint): Result<number, MacpError> {
  if (ttlMs < 1n || ttlMs > MAX_TTL_MS_BIG) {
    return err(macpError(ErrorCode.INVALID_ENVELOPE, `ttl_ms must be between 1 and ${MAX_TTL_MS}`));
  }
  return ok(Number(ttlMs));
}

/** The canonical SessionStart checks of strict modes (core.md SS-5). */
export function checkStrictStart(start: SessionStartPayload): Result<void, MacpError> {
  const ttl = checkTtl(start.ttlMs);
  if (ttl.isErr()) return err(ttl.error);
  if (isBlank(start.modeVersion)) {
    return err(macpError(ErrorCode.INVALID_ENVELOPE, "mode_version is required"));
  }
  if (isBlank(start.configurationVersion)) {
    return err(macpError(ErrorCode.INVALID_ENVELOPE, "configuration_version is required"));
  }
  if (start.participants.length === 0) {
    return err(macpError(ErrorCode.INVALID_ENVELOPE, "participants must not be empty"));
  }
  if (start.participants.length > MAX_PARTICIPANTS) {
    return err(
      macpError(ErrorCode.INVALID_ENVELOPE, `at most ${MAX_PARTICIPANTS} participants are allowed`),
    );
  }
  const seen = new Set<string>();
  for (const participant of start.participants) {
    const trimmed = participant.trim();
    if (trimmed === "") {
      return err(macpError(ErrorCode.INVALID_ENVELOPE, "participant ids must not be blank"));
    }
    if (seen.has(trimmed)) {
      return err(macpError(ErrorCode.INVALID_ENVELOPE, `duplicate participant "${trimmed}"`));
    }
    seen.add(trimmed);
  }
  if (start.maxSuspendMs < 0n) {
    return err(macpError(ErrorCode.INVALID_ENVELOPE, "max_suspend_ms must not be negative"));
  }
  return OK;
}
