import { type Envelope, SessionState } from "@macp/proto";
import { PROTOCOL_VERSION } from "./envelope-checks.js";
import type { Kernel } from "./kernel.js";
import { decideOnReplica, refresh } from "./replicas.js";
import { type Session, withLock } from "./session.js";
import { processInSession } from "./session-messages.js";

/** The earliest time (runtime clock) at which {@link processDueWork} has something to do. */
export function nextDeadline(kernel: Kernel): number | undefined {
  let next = Number.POSITIVE_INFINITY;
  for (const session of kernel.table.sessions.values()) {
    const due = sessionDueAt(kernel, session);
    if (due < next) next = due;
  }
  return Number.isFinite(next) ? next : undefined;
}

/** Expires overdue sessions, injects due mode messages, evicts old terminal sessions. */
export async function processDueWork(kernel: Kernel): Promise<void> {
  const now = kernel.clock.now();
  const due: Session[] = [];
  for (const session of kernel.table.sessions.values()) {
    if (sessionDueAt(kernel, session) <= now) due.push(session);
  }
  for (const session of due) {
    await withLock(session, () => processDueSession(kernel, session, now));
  }
}

function sessionDueAt(kernel: Kernel, session: Session): number {
  switch (session.state) {
    case SessionState.OPEN: {
      // Expiry is strict (now > deadline), so the first instant it applies is deadline + 1.
      const modeDue = session.handler.nextDueAt?.(session.view, session.modeState);
      const expiry = session.expiresAtMs + 1;
      return modeDue !== undefined && modeDue < expiry ? modeDue : expiry;
    }
    case SessionState.SUSPENDED:
      return (session.suspendedAtMs ?? 0) + (session.maxSuspendMs - session.suspendedTotalMs) + 1;
    default:
      return (session.endedAtMs ?? 0) + kernel.limits.sessionRetentionMs;
  }
}

async function processDueSession(kernel: Kernel, session: Session, now: number): Promise<void> {
  if (session.isTerminal) {
    if ((session.endedAtMs ?? 0) + kernel.limits.sessionRetentionMs <= now) kernel.evict(session);
    return;
  }
  const shared = kernel.log.shared !== undefined;
  const expired = await (shared
    ? decideOnReplica(kernel, session, () => refresh(kernel, session))
    : kernel.expireIfDue(session));
  if (expired.isErr() || session.state !== SessionState.OPEN) return;
  const messages = session.handler.dueMessages?.(session.view, session.modeState, now) ?? [];
  for (const message of messages) {
    const envelope: Envelope = {
      $typeName: "macp.v1.Envelope",
      macpVersion: PROTOCOL_VERSION,
      mode: session.view.mode,
      messageType: message.messageType,
      messageId: message.messageId,
      sessionId: session.view.sessionId,
      sender: message.sender,
      timestampUnixMs: BigInt(now),
      payload: message.payload,
    };
    const outcome = await (shared
      ? decideOnReplica(kernel, session, () => processInSession(kernel, session, envelope, true))
      : processInSession(kernel, session, envelope, true));
    if (outcome.isErr()) {
      kernel.logger.warn("a due mode message was refused", {
        sessionId: session.view.sessionId,
        messageId: message.messageId,
        code: outcome.error.code,
        message: outcome.error.message,
      });
    }
  }
}
