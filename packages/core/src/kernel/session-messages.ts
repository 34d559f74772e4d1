import { type Ack, type Envelope, SessionState } from "@macp/proto";
import { err, ok } from "neverthrow";
import { ErrorCode, macpError } from "../errors.js";
import type { ModeStep } from "../mode-handler.js";
import type { Kernel } from "./kernel.js";
import { chain, type MaybeAsync, type Outcome } from "./outcome.js";
import { holdLockUntil, type Session, withLock } from "./session.js";
import { targetFor } from "./session-log.js";
import { applyAccepted, evaluateMessage } from "./session-machine.js";

/** A session-scoped envelope: waits for a start in flight, then runs inside the session's lock. */
export function sessionMessage(kernel: Kernel, envelope: Envelope): MaybeAsync<Outcome<Ack>> {
  const session = kernel.table.get(envelope.sessionId);
  if (session === undefined) {
    const pending = kernel.table.pendingStarts.get(envelope.sessionId);
    if (pending !== undefined) return pending.then(() => sessionMessage(kernel, envelope));
    return err(macpError(ErrorCode.SESSION_NOT_FOUND, `session "${envelope.sessionId}" not found`));
  }
  if (session.lockTail !== undefined) {
    return withLock(session, () => processInSession(kernel, session, envelope, false));
  }
  // Idle session: run inline (what withLock does) without a closure per message.
  const result = processInSession(kernel, session, envelope, false);
  return result instanceof Promise ? holdLockUntil(session, result) : result;
}

/**
 * MSG-2..MSG-13, inside the session's lock: dedup, mode match, lazy expiry,
 * state, the mode's evaluation; then append, apply, publish.
 */
export function processInSession(
  kernel: Kernel,
  session: Session,
  envelope: Envelope,
  synthetic: boolean,
): MaybeAsync<Outcome<Ack>> {
  if (session.seen.has(envelope.messageId)) return ok(kernel.ack(envelope, session.state, true));
  if (envelope.mode !== session.view.mode) {
    return err(
      macpError(
        ErrorCode.INVALID_ENVELOPE,
        `mode "${envelope.mode}" does not match the session's mode "${session.view.mode}"`,
      ),
    );
  }
  const now = kernel.clock.now();
  if (session.state === SessionState.OPEN && now > session.expiresAtMs) {
    return chain(kernel.expire(session, now), (expired) =>
      expired.isErr() ? err(expired.error) : err(kernel.notOpen(session)),
    );
  }
  if (session.state !== SessionState.OPEN) return err(kernel.notOpen(session));
  if (kernel.modes.get(session.view.mode) === undefined) {
    return err(
      macpError(
        ErrorCode.MODE_NOT_SUPPORTED,
        `mode "${session.view.mode}" is no longer registered`,
      ),
    );
  }
  const step = evaluateMessage(session, envelope, now, synthetic);
  if (step.isErr()) return err(step.error);
  const appended = kernel.log.append(
    session.view.sessionId,
    { kind: "incoming", envelope, receivedAtMs: now },
    kernel.log.shared === undefined
      ? undefined
      : targetFor(session, step.value.resolution === undefined, session.expiresAtMs),
  );
  if (appended instanceof Promise) {
    return appended.then((result) => commit(kernel, session, envelope, step.value, now, result));
  }
  return commit(kernel, session, envelope, step.value, now, appended);
}

/** Once the append is settled: the state changes only if it was durable. */
function commit(
  kernel: Kernel,
  session: Session,
  envelope: Envelope,
  step: ModeStep<unknown>,
  now: number,
  appended: Outcome<void>,
): Outcome<Ack> {
  if (appended.isErr()) return err(appended.error);
  const events = applyAccepted(session, envelope, step, now);
  kernel.publish(session, events, events.lifecycle === undefined ? now : kernel.clock.now());
  return ok(kernel.ack(envelope, session.state, false, now));
}
