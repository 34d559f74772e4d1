import { type Ack, type Envelope, SessionState } from "@macp/proto";
import { err, ok } from "neverthrow";
import { ErrorCode, type MacpError, macpError } from "../errors.js";
import type { ModeRegistry } from "../modes/mode-registry.js";
import type { PolicyRegistry } from "../policy/policy-registry.js";
import type { RuntimeObserver } from "../runtime-observer.js";
import type { Clock, RuntimeLimits, RuntimeLogger } from "../runtime-options.js";
import type { InternalRecordType } from "../store/log-record.js";
import { chain, type MaybeAsync, OK_VOID, type Outcome } from "./outcome.js";
import { type Session, withLock } from "./session.js";
import { runtimeRecordTarget, type SessionLog } from "./session-log.js";
import { applyRuntimeRecord, type SessionEvents } from "./session-machine.js";
import type { SessionTable } from "./session-table.js";
import type { StreamHubs } from "./stream-hubs.js";

// Acks carry int64 times as bigint; consecutive messages usually share a millisecond.
let lastMs = Number.NaN;
let lastMsBig = 0n;
function bigintMs(ms: number): bigint {
  if (ms !== lastMs) {
    lastMs = ms;
    lastMsBig = BigInt(ms);
  }
  return lastMsBig;
}

/**
 * The runtime's state and the steps every part of the kernel shares: the
 * session table, the log, the stream hubs, and "apply a record, then publish
 * what it caused". The RPC-sized steps (start, in-session processing, control,
 * due work, recovery, registries, streams) are functions over this object.
 */
export class Kernel {
  closed = false;

  constructor(
    readonly clock: Clock,
    readonly limits: RuntimeLimits,
    readonly logger: RuntimeLogger,
    readonly modes: ModeRegistry,
    readonly policies: PolicyRegistry,
    readonly table: SessionTable,
    readonly log: SessionLog,
    readonly hubs: StreamHubs,
    readonly observer: RuntimeObserver | undefined,
  ) {}

  /** Publishes what applying a record caused and keeps the open-session index in step. */
  publish(session: Session, events: SessionEvents, observedAtMs: number): void {
    if (events.lifecycle !== undefined) this.table.trackOpen(session);
    this.hubs.publish(session, events, observedAtMs);
  }

  /** Appends a runtime record, then applies and publishes it; the state changes only once durable. */
  recordRuntime(
    session: Session,
    type: InternalRecordType,
    payload: Uint8Array,
    now: number,
  ): MaybeAsync<Outcome<SessionEvents>> {
    const appended = this.log.append(
      session.view.sessionId,
      { kind: "internal", type, receivedAtMs: now, payload },
      this.log.shared === undefined ? undefined : runtimeRecordTarget(session, type, now),
    );
    return chain(appended, (result) => {
      if (result.isErr()) return err(result.error);
      const events = applyRuntimeRecord(session, type, now);
      this.publish(session, events, this.clock.now());
      return ok(events);
    });
  }

  /** Appends TtlExpired and moves the session to EXPIRED (LC-5). */
  expire(session: Session, now: number): MaybeAsync<Outcome<void>> {
    return chain(this.recordRuntime(session, "TtlExpired", new Uint8Array(0), now), (result) =>
      result.isErr() ? err(result.error) : OK_VOID,
    );
  }

  /** Lazy expiry on lookups (LC-5b, LC-13): OPEN past the deadline, or SUSPENDED past the cap. */
  expireIfDue(session: Session): MaybeAsync<Outcome<void>> {
    const now = this.clock.now();
    const overdue =
      (session.state === SessionState.OPEN && now > session.expiresAtMs) ||
      (session.state === SessionState.SUSPENDED &&
        session.suspendedTimeAt(now) > session.maxSuspendMs);
    return overdue ? this.expire(session, now) : OK_VOID;
  }

  /** The session with lazy expiry applied, or undefined. */
  async lookupSession(sessionId: string): Promise<Outcome<Session | undefined>> {
    const pending = this.table.pendingStarts.get(sessionId);
    if (pending !== undefined) await pending;
    const session = this.table.get(sessionId);
    if (session === undefined) return ok(undefined);
    const expired = await withLock(session, () => this.expireIfDue(session));
    return expired.isErr() ? err(expired.error) : ok(session);
  }

  /** Takes a terminal session out of memory; its id stays reserved (D-28). */
  evict(session: Session): void {
    this.table.remove(session);
    this.hubs.releaseSessionHub(session.view.sessionId);
    this.log.store.evicted?.(session.view.sessionId);
    this.observer?.sessionEvicted?.(session.view.sessionId);
  }

  ack(envelope: Envelope, state: SessionState, duplicate: boolean, now = this.clock.now()): Ack {
    return {
      $typeName: "macp.v1.Ack",
      ok: true,
      duplicate,
      messageId: envelope.messageId,
      sessionId: envelope.sessionId,
      acceptedAtUnixMs: bigintMs(now),
      sessionState: state,
    };
  }

  notOpen(session: Session): MacpError {
    return macpError(
      ErrorCode.SESSION_NOT_OPEN,
      `session "${session.view.sessionId}" is ${SessionState[session.state]}`,
    );
  }
}
