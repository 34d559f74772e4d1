import { SessionState } from "@macp/proto";
import type { Outcome } from "./outcome.js";
import type { Session } from "./session.js";
import { SessionIdSet } from "./session-id-set.js";

/**
 * The sessions in memory and the indexes over them: ids that may never be
 * reused, SessionStarts still being persisted, and OPEN sessions by initiator.
 */
export class SessionTable {
  /** In creation order, which ListSessions paging relies on. */
  readonly sessions = new Map<string, Session>();
  /** Ids of sessions no longer in memory; never reusable (D-28). Only grows, so kept compact. */
  readonly tombstones = new SessionIdSet();
  /** SessionStarts whose append is in flight, by session id. */
  readonly pendingStarts = new Map<string, Promise<unknown>>();
  /** Replicas being loaded from a shared log, by session id. */
  readonly loadingReplicas = new Map<string, Promise<Outcome<Session | undefined>>>();
  /** OPEN sessions by initiator, for max_open_sessions. */
  private readonly openByInitiator = new Map<string, Set<Session>>();
  private nextOrdinal = 1;

  get(sessionId: string): Session | undefined {
    return this.sessions.get(sessionId);
  }

  /** The creation-order number of the next session. */
  takeOrdinal(): number {
    return this.nextOrdinal++;
  }

  insert(session: Session): void {
    this.sessions.set(session.view.sessionId, session);
    this.trackOpen(session);
  }

  remove(session: Session): void {
    const sessionId = session.view.sessionId;
    this.sessions.delete(sessionId);
    this.tombstones.add(sessionId);
    this.trackOpen(session);
  }

  /** OPEN sessions of `initiator` that have not passed their deadline at `now`. */
  countOpen(initiator: string, now: number): number {
    const open = this.openByInitiator.get(initiator);
    if (open === undefined) return 0;
    let count = 0;
    for (const session of open) if (now <= session.expiresAtMs) count++;
    return count;
  }

  /** Keeps openByInitiator in step with a session's state. Call after every transition. */
  trackOpen(session: Session): void {
    const initiator = session.view.initiator;
    let open = this.openByInitiator.get(initiator);
    if (session.state === SessionState.OPEN) {
      if (open === undefined) {
        open = new Set();
        this.openByInitiator.set(initiator, open);
      }
      open.add(session);
    } else if (open !== undefined) {
      open.delete(session);
      if (open.size === 0) this.openByInitiator.delete(initiator);
    }
  }
}
