import type { RuntimeLogger } from "@macp/core";
import { newSessionLog, type SessionLog } from "./session-log.js";

/** Every session log the store has touched, by session id. */
export class SessionRegistry {
  private readonly sessions = new Map<string, SessionLog>();

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
    this.sessions.delete(sessionId);
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
