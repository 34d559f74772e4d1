import type { RuntimeLogger } from "@macp/core";
import { isSettledOnDisk, newSessionLog, type SessionLog } from "./session-log.js";

/**
 * The session logs the store tracks in memory, by session id: every log it has
 * touched, less those of evicted sessions once their records are all in their
 * files. A forgotten log is looked at again on disk if it is ever used again.
 */
export class SessionRegistry {
  private readonly sessions = new Map<string, SessionLog>();
  /** Logs of evicted sessions still tracked because records of theirs are in flight. */
  private readonly evictedLogs = new Set<SessionLog>();

  constructor(
    private readonly logsDirectory: string,
    private readonly logger: RuntimeLogger,
  ) {}

  get(sessionId: string): SessionLog | undefined {
    return this.sessions.get(sessionId);
  }

  /** The session's log, tracked from now on if it was not. */
  log(sessionId: string): SessionLog {
    let log = this.sessions.get(sessionId);
    if (!log) {
      log = newSessionLog(sessionId, this.logsDirectory);
      this.sessions.set(sessionId, log);
    }
    return log;
  }

  forget(sessionId: string): void {
    const log = this.sessions.get(sessionId);
    if (log) this.evictedLogs.delete(log);
    this.sessions.delete(sessionId);
  }

  /** Logs tracked in memory now. */
  get size(): number {
    return this.sessions.size;
  }

  /**
   * Forgets the session's log now if it is settled on disk, else as soon as
   * {@link releaseEvicted} finds it settled; `release` runs first (to close its
   * handle). Ignores an id the store does not track or that is evicted already.
   */
  evict(sessionId: string, release: (log: SessionLog) => void): void {
    const log = this.sessions.get(sessionId);
    if (log === undefined || log.evicted) return;
    log.evicted = true;
    if (!this.releaseIfSettled(log, release)) this.evictedLogs.add(log);
  }

  /** Forgets every evicted session's log that is settled on disk now (after a checkpoint). */
  releaseEvicted(release: (log: SessionLog) => void): void {
    for (const log of this.evictedLogs) {
      if (this.releaseIfSettled(log, release)) this.evictedLogs.delete(log);
    }
  }

  /** True once the log needs no more looking after: forgotten, or quarantined (kept). */
  private releaseIfSettled(log: SessionLog, release: (log: SessionLog) => void): boolean {
    if (log.state === "quarantined") return true;
    if (!isSettledOnDisk(log)) return false;
    release(log);
    if (this.sessions.get(log.sessionId) === log) this.sessions.delete(log.sessionId);
    return true;
  }

  values(): IterableIterator<SessionLog> {
    return this.sessions.values();
  }

  /** Marks the log damaged: never written again by this store, reported with `reason`. */
  quarantine(log: SessionLog, reason: string): void {
    log.state = "quarantined";
    log.reason = reason;
    this.logger.error(`session ${log.sessionId} quarantined: ${reason}`, {
      sessionId: log.sessionId,
      path: log.path,
    });
  }
}

export function setKnown(
  log: SessionLog,
  state: "absent" | "present" | "stale",
  end: number,
): void {
  log.state = state;
  log.end = end;
}
