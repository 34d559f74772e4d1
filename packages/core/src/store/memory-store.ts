import { SessionIdSet } from "../kernel/session-id-set.js";
import { CompactLog } from "./compact-log.js";
import type { SessionStore, StoredSession } from "./session-store.js";

/**
 * A store that keeps every log in memory until the runtime evicts its session.
 * Synchronous, so the runtime never waits on it. Logs are held compactly
 * ({@link CompactLog}) and rebuilt on read: the records read back equal the
 * records appended, but are not the same objects.
 */
export interface MemoryStore extends SessionStore {
  /** Total records held, for tests and benchmarks. */
  readonly recordCount: number;
  /** Makes the next appends fail, to exercise storage-failure paths. */
  failAppends(reason: string | undefined): void;
}

export function createMemoryStore(): MemoryStore {
  const logs = new Map<string, CompactLog>();
  // Ids of evicted sessions: their records are gone, the ids stay reserved (D-28).
  const evicted = new SessionIdSet();
  let recordCount = 0;
  let failure: string | undefined;
  let closed = false;
  return {
    get recordCount() {
      return recordCount;
    },
    failAppends(reason) {
      failure = reason;
    },
    append(sessionId, record) {
      if (closed) throw new Error("store is closed");
      if (failure !== undefined) throw new Error(failure);
      let log = logs.get(sessionId);
      if (log === undefined) {
        log = new CompactLog();
        logs.set(sessionId, log);
      }
      log.append(record);
      recordCount++;
    },
    read(sessionId) {
      return logs.get(sessionId)?.records();
    },
    *loadAll(): Iterable<StoredSession> {
      // Recovery evicts sessions while it reads them; each is yielded once.
      const reserved = [...evicted];
      for (const [sessionId, log] of logs) yield { sessionId, records: log.records() };
      for (const sessionId of reserved) yield { sessionId, records: [] };
    },
    delete(sessionId) {
      const log = logs.get(sessionId);
      if (log) recordCount -= log.length;
      logs.delete(sessionId);
    },
    evicted(sessionId) {
      const log = logs.get(sessionId);
      if (log === undefined) return;
      recordCount -= log.length;
      logs.delete(sessionId);
      evicted.add(sessionId);
    },
    async close() {
      closed = true;
    },
  };
}
