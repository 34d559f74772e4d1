import type { Envelope } from "@macp/proto";
import { err } from "neverthrow";
import { ErrorCode, type MacpError, macpError } from "../errors.js";
import type { RuntimeLogger } from "../runtime-options.js";
import type { InternalRecordType, LogRecord } from "../store/log-record.js";
import type { SessionStore } from "../store/session-store.js";
import {
  isSharedStore,
  type OpenSessionLimit,
  type SessionSummary,
  type SharedSessionStore,
} from "../store/shared-session-store.js";
import { type MaybeAsync, OK_VOID, type Outcome } from "./outcome.js";
import type { Session } from "./session.js";

/** Where an append goes in a shared log: the position it was decided on, and the session afterwards. */
export interface SharedTarget {
  readonly position: number;
  readonly summary: SessionSummary;
  readonly limit?: OpenSessionLimit;
}

/**
 * A shared-log append lost its position to another instance. Never leaves the
 * kernel: the caller catches up from the log and decides again.
 */
export const LOG_CONFLICT: MacpError = macpError(
  ErrorCode.INTERNAL_ERROR,
  "the session changed on another instance; catch up and retry",
);

/** The kernel's side of the store port: appends as values, history by sequence. */
export class SessionLog {
  /** Set when instances share the store: sessions are then replicas of the shared log. */
  readonly shared: SharedSessionStore | undefined;

  constructor(
    readonly store: SessionStore,
    private readonly logger: RuntimeLogger,
  ) {
    this.shared = isSharedStore(store) ? store : undefined;
  }

  /**
   * Appends one record; synchronous when the store is. A failure is an
   * INTERNAL_ERROR. With a shared store the record goes at `target`'s
   * position, and {@link LOG_CONFLICT} means another instance wrote there first.
   */
  append(sessionId: string, record: LogRecord, target?: SharedTarget): MaybeAsync<Outcome<void>> {
    if (this.shared !== undefined && target !== undefined) {
      return this.appendShared(this.shared, sessionId, record, target);
    }
    try {
      const appended = this.store.append(sessionId, record);
      if (appended instanceof Promise) {
        return appended.then(
          () => OK_VOID,
          (cause: unknown) => this.appendFailed(sessionId, cause),
        );
      }
      return OK_VOID;
    } catch (cause) {
      return this.appendFailed(sessionId, cause);
    }
  }

  private async appendShared(
    shared: SharedSessionStore,
    sessionId: string,
    record: LogRecord,
    target: SharedTarget,
  ): Promise<Outcome<void>> {
    try {
      const outcome = await shared.appendAt(
        sessionId,
        target.position,
        record,
        target.summary,
        target.limit,
      );
      switch (outcome.kind) {
        case "appended":
          return OK_VOID;
        case "conflict":
          return err(LOG_CONFLICT);
        case "limit":
          return err(
            macpError(
              ErrorCode.RATE_LIMITED,
              `this identity already has ${outcome.open} open sessions (limit ${target.limit?.max})`,
            ),
          );
      }
    } catch (cause) {
      return this.appendFailed(sessionId, cause);
    }
  }

  /** Logs a store failure; the caller answers INTERNAL_ERROR. */
  appendFailed(sessionId: string, cause: unknown): Outcome<never> {
    this.logger.error("storage append failed", {
      sessionId,
      error: cause instanceof Error ? cause.message : String(cause),
    });
    return err(macpError(ErrorCode.INTERNAL_ERROR, "the message could not be stored durably"));
  }

  /** Incoming envelopes with sequence in (afterSequence, upTo]. */
  async readIncoming(sessionId: string, afterSequence: number, upTo: number): Promise<Envelope[]> {
    const records = (await this.store.read(sessionId)) ?? [];
    const out: Envelope[] = [];
    let sequence = 0;
    for (const record of records) {
      if (record.kind !== "incoming") continue;
      sequence++;
      if (sequence > upTo) break;
      if (sequence > afterSequence) out.push(record.envelope);
    }
    return out;
  }
}

/** The target of a session's next append, when the session is then `open` with this deadline. */
export function targetFor(session: Session, open: boolean, expiresAtMs: number): SharedTarget {
  return {
    position: session.logLength,
    summary: { initiator: session.view.initiator, open, expiresAtMs },
  };
}

/** The target of a runtime record: the session's summary once it applies (as the machine's resume does). */
export function runtimeRecordTarget(
  session: Session,
  type: InternalRecordType,
  now: number,
): SharedTarget {
  if (type !== "SessionResume") return targetFor(session, false, session.expiresAtMs);
  const duration = Math.max(0, now - (session.suspendedAtMs ?? now));
  const open = session.suspendedTotalMs + duration <= session.maxSuspendMs;
  return targetFor(session, open, open ? session.expiresAtMs + duration : session.expiresAtMs);
}
