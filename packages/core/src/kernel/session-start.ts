import { fromBinary } from "@bufbuild/protobuf";
import {
  type Ack,
  type Envelope,
  type SessionStartPayload,
  SessionStartPayloadSchema,
  SessionState,
} from "@macp/proto";
import { err, ok } from "neverthrow";
import { ErrorCode, type MacpError, macpError } from "../errors.js";
import type { Identity } from "../identity.js";
import type { IncomingRecord, SessionBinding } from "../store/log-record.js";
import { checkSessionId, checkStrictStart, checkTtl } from "./envelope-checks.js";
import type { Kernel } from "./kernel.js";
import type { MaybeAsync, Outcome } from "./outcome.js";
import { loadReplica } from "./replicas.js";
import { withLock } from "./session.js";
import { LOG_CONFLICT, type SharedTarget } from "./session-log.js";
import { evaluateStart, openSession } from "./session-machine.js";

/** Semantics revision recorded on every SessionStart (handoff uses the acceptance clock). */
const SEMANTICS_REV = 1;

/**
 * SessionStart: the strict start checks, policy binding and the mode's
 * `onSessionStart`; then the record with its binding is appended, and only
 * then does the session exist.
 */
export function startSession(
  kernel: Kernel,
  envelope: Envelope,
  identity: Identity,
): MaybeAsync<Outcome<Ack>> {
  const idCheck = checkSessionId(envelope.sessionId);
  if (idCheck.isErr()) return err(idCheck.error);
  const entry = kernel.modes.get(envelope.mode);
  if (entry === undefined) {
    return err(
      macpError(ErrorCode.MODE_NOT_SUPPORTED, `mode "${envelope.mode}" is not registered`),
    );
  }
  if (envelope.payload.length === 0) {
    return err(macpError(ErrorCode.INVALID_ENVELOPE, "SessionStart needs a payload"));
  }
  let start: SessionStartPayload;
  try {
    start = fromBinary(SessionStartPayloadSchema, envelope.payload);
  } catch {
    return err(macpError(ErrorCode.INVALID_ENVELOPE, "payload is not a SessionStartPayload"));
  }
  if (entry.strict) {
    const strict = checkStrictStart(start);
    if (strict.isErr()) return err(strict.error);
  }
  const descriptorVersion = entry.descriptor.modeVersion;
  if (
    descriptorVersion !== "" &&
    start.modeVersion !== "" &&
    start.modeVersion !== descriptorVersion
  ) {
    return err(
      macpError(
        ErrorCode.INVALID_ENVELOPE,
        `mode_version "${start.modeVersion}" does not match the registered "${descriptorVersion}"`,
      ),
    );
  }
  const ttl = checkTtl(start.ttlMs);
  if (ttl.isErr()) return err(ttl.error);

  const table = kernel.table;
  const existing = table.get(envelope.sessionId);
  if (existing !== undefined) {
    return withLock(existing, () =>
      existing.seen.has(envelope.messageId)
        ? ok(kernel.ack(envelope, existing.state, true))
        : err(alreadyExists(envelope.sessionId)),
    );
  }
  if (table.tombstones.has(envelope.sessionId)) return err(alreadyExists(envelope.sessionId));
  const pending = table.pendingStarts.get(envelope.sessionId);
  if (pending !== undefined) {
    // Another start for this id is being persisted; judge this one once it is settled.
    return pending.then(() => startSession(kernel, envelope, identity));
  }

  const policy = kernel.policies.resolveForSession(start.policyVersion, envelope.mode);
  if (policy.isErr()) return err(policy.error);
  const now = kernel.clock.now();
  const binding: SessionBinding = {
    modeVersion: start.modeVersion !== "" ? start.modeVersion : descriptorVersion,
    policy: policy.value,
    modeDescriptor: entry.descriptor,
    strict: entry.strict,
    expiresAtMs: deadlineFor(kernel, envelope.timestampUnixMs, ttl.value, now),
    maxSuspendMs:
      start.maxSuspendMs > 0n ? Number(start.maxSuspendMs) : kernel.limits.defaultMaxSuspendMs,
    semanticsRev: SEMANTICS_REV,
  };
  const opening = evaluateStart(entry, envelope, start, binding);
  if (opening.isErr()) return err(opening.error);
  const shared = kernel.log.shared !== undefined;
  // With a shared store the cap is checked cluster-wide, atomically with the append.
  if (identity.maxOpenSessions !== null && !shared) {
    const open = table.countOpen(identity.sender, kernel.clock.now());
    if (open >= identity.maxOpenSessions) {
      return err(
        macpError(
          ErrorCode.RATE_LIMITED,
          `this identity already has ${open} open sessions (limit ${identity.maxOpenSessions})`,
        ),
      );
    }
  }

  const record: IncomingRecord & { readonly binding: SessionBinding } = {
    kind: "incoming",
    envelope,
    receivedAtMs: now,
    binding,
  };
  const commit = (): Outcome<Ack> => {
    const opened = openSession(opening.value, entry, record, table.takeOrdinal());
    table.insert(opened.session);
    kernel.publish(opened.session, opened.events, now);
    kernel.observer?.sessionLoaded?.(envelope.sessionId, now);
    return ok(kernel.ack(envelope, SessionState.OPEN, false, now));
  };
  const appended = kernel.log.append(
    envelope.sessionId,
    record,
    shared ? startTarget(identity, binding.expiresAtMs, now) : undefined,
  );
  if (!(appended instanceof Promise)) return appended.isErr() ? err(appended.error) : commit();
  const settled = appended.then((result) => {
    if (result.isOk()) return commit();
    // Another instance started this id first: judge this start against its session.
    if (result.error === LOG_CONFLICT) return restartAfterConflict(kernel, envelope, identity);
    return err(result.error);
  });
  table.pendingStarts.set(envelope.sessionId, settled);
  void settled.finally(() => table.pendingStarts.delete(envelope.sessionId));
  return settled;
}

/** The id was taken on another instance: load that session, then this start is a duplicate or refused. */
async function restartAfterConflict(
  kernel: Kernel,
  envelope: Envelope,
  identity: Identity,
): Promise<Outcome<Ack>> {
  const loaded = await loadReplica(kernel, envelope.sessionId, false);
  if (loaded.isErr()) return err(loaded.error);
  if (loaded.value === undefined) return err(alreadyExists(envelope.sessionId));
  return startSession(kernel, envelope, identity);
}

/** A SessionStart opens the shared log at position 0, within the initiator's cluster-wide cap. */
function startTarget(identity: Identity, expiresAtMs: number, now: number): SharedTarget {
  return {
    position: 0,
    summary: { initiator: identity.sender, open: true, expiresAtMs },
    limit:
      identity.maxOpenSessions === null ? undefined : { max: identity.maxOpenSessions, nowMs: now },
  };
}

/** core.md D-3: trust the client's timestamp only within the allowed skew. */
function deadlineFor(kernel: Kernel, timestampUnixMs: bigint, ttlMs: number, now: number): number {
  const claimed = Number(timestampUnixMs);
  const base =
    claimed > 0 && Math.abs(claimed - now) <= kernel.limits.timestampSkewMs ? claimed : now;
  return base + ttlMs;
}

function alreadyExists(sessionId: string): MacpError {
  return macpError(ErrorCode.SESSION_ALREADY_EXISTS, `session "${sessionId}" already exists`);
}
