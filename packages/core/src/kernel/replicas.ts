import { err, ok } from "neverthrow";
import { ErrorCode, type MacpError, macpError } from "../errors.js";
import type { LogRecord } from "../store/log-record.js";
import type { Kernel } from "./kernel.js";
import type { MaybeAsync, Outcome } from "./outcome.js";
import { type Session, withLock } from "./session.js";
import { LOG_CONFLICT } from "./session-log.js";
import { applyRecord } from "./session-machine.js";
import { openFromLog } from "./session-replay.js";

// With a shared store every in-memory session is a replica of its log. A
// decision ends in an append at the position it was based on; when another
// instance wrote first, the replica catches up by applying the records it
// missed through the session machine (publishing them here, as if they had
// been accepted here) and the decision is taken again.

/** Decisions retried after conflicts before giving up (heavy contention on one session). */
const MAX_SHARED_ATTEMPTS = 64;

/** The session with lazy expiry applied, or undefined; a shared store's replica is brought up to date first. */
export async function lookupSession(
  kernel: Kernel,
  sessionId: string,
): Promise<Outcome<Session | undefined>> {
  if (kernel.log.shared === undefined) return kernel.lookupSession(sessionId);
  const loaded = await loadReplica(kernel, sessionId, true);
  if (loaded.isErr() || loaded.value === undefined) return loaded;
  const session = loaded.value;
  const fresh = await withLock(session, () =>
    decideOnReplica(kernel, session, () => refresh(kernel, session)),
  );
  return fresh.isErr() ? err(fresh.error) : ok(session);
}

/** Catches a replica up, then expires it if due; call inside the session's lock. */
export async function refresh(kernel: Kernel, session: Session): Promise<Outcome<void>> {
  const caughtUp = await catchUp(kernel, session);
  return caughtUp.isErr() ? err(caughtUp.error) : kernel.expireIfDue(session);
}

/**
 * Runs one decision on a replica, inside its lock. A conflict means another
 * instance appended first, and a refusal may come from a stale replica: both
 * catch up from the log and decide again, so every answer stands on the log's
 * latest state. An acceptance needs no check: its append at the expected
 * position proves the replica was current.
 */
export async function decideOnReplica<T>(
  kernel: Kernel,
  session: Session,
  decide: () => MaybeAsync<Outcome<T>>,
): Promise<Outcome<T>> {
  for (let attempt = 1; ; attempt++) {
    const decided = await decide();
    if (decided.isOk()) return decided;
    if (attempt >= MAX_SHARED_ATTEMPTS) {
      return err(
        macpError(ErrorCode.INTERNAL_ERROR, "the session is changing too fast to decide; retry"),
      );
    }
    const caughtUp = await catchUp(kernel, session);
    if (caughtUp.isErr()) return err(caughtUp.error);
    if (decided.error !== LOG_CONFLICT && caughtUp.value === 0) return decided;
  }
}

/** Applies the records other instances appended since the replica's position; call inside the lock. */
export async function catchUp(kernel: Kernel, session: Session): Promise<Outcome<number>> {
  const shared = kernel.log.shared;
  if (shared === undefined) return ok(0);
  const sessionId = session.view.sessionId;
  let records: readonly LogRecord[];
  try {
    records = await shared.readFrom(sessionId, session.logLength);
  } catch (cause) {
    return kernel.log.appendFailed(sessionId, cause);
  }
  const applied = applyMissed(kernel, session, records);
  return applied ? ok(records.length) : err(unappliable());
}

/**
 * The replica of a session, loaded from the shared log if this instance has
 * none yet. Loading publishes what it applies (CREATED, envelopes, later
 * transitions), so watchers here see sessions started elsewhere.
 */
export async function loadReplica(
  kernel: Kernel,
  sessionId: string,
  waitForStarts: boolean,
): Promise<Outcome<Session | undefined>> {
  const table = kernel.table;
  const pending = waitForStarts ? table.pendingStarts.get(sessionId) : undefined;
  if (pending !== undefined) await pending;
  const existing = table.get(sessionId);
  if (existing !== undefined) return ok(existing);
  if (table.tombstones.has(sessionId)) return ok(undefined);
  let loading = table.loadingReplicas.get(sessionId);
  if (loading === undefined) {
    loading = readReplica(kernel, sessionId).finally(() => table.loadingReplicas.delete(sessionId));
    table.loadingReplicas.set(sessionId, loading);
  }
  return loading;
}

async function readReplica(
  kernel: Kernel,
  sessionId: string,
): Promise<Outcome<Session | undefined>> {
  let records: readonly LogRecord[];
  try {
    records = (await kernel.log.store.read(sessionId)) ?? [];
  } catch (cause) {
    return kernel.log.appendFailed(sessionId, cause);
  }
  const existing = kernel.table.get(sessionId);
  if (existing !== undefined) return ok(existing);
  const opened = openFromLog(kernel, sessionId, records[0]);
  if (opened.isErr()) {
    kernel.table.tombstones.add(sessionId);
    kernel.logger.error("session quarantined: its log could not be replayed", {
      sessionId,
      reason: opened.error,
    });
    return ok(undefined);
  }
  if (opened.value === undefined) return ok(undefined);
  const { session, events } = opened.value;
  const now = kernel.clock.now();
  kernel.table.insert(session);
  kernel.publish(session, events, now);
  kernel.observer?.sessionLoaded?.(sessionId, session.startedAtMs);
  applyMissed(kernel, session, records.slice(1));
  return ok(session);
}

/** Applies records through the session machine and publishes what they cause; false if one does not apply. */
function applyMissed(kernel: Kernel, session: Session, records: readonly LogRecord[]): boolean {
  for (const record of records) {
    const applied = applyRecord(session, record);
    if (applied.isErr()) {
      kernel.logger.error("a record from the shared log does not apply", {
        sessionId: session.view.sessionId,
        reason: `${applied.error.code} ${applied.error.message}`,
      });
      return false;
    }
    kernel.publish(session, applied.value, kernel.clock.now());
  }
  return true;
}

function unappliable(): MacpError {
  return macpError(ErrorCode.INTERNAL_ERROR, "the session's log cannot be applied");
}
