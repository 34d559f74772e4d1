import type { LogRecord } from "./log-record.js";

/** One session's log as found at recovery, or the reason it could not be read. */
export type StoredSession =
  | { readonly sessionId: string; readonly records: readonly LogRecord[] }
  | { readonly sessionId: string; readonly error: string };

/**
 * The persistence port. The runtime appends every accepted envelope and every
 * record it emits before it acknowledges, reads history for passive subscribers,
 * and rebuilds every session from `loadAll` at start-up.
 *
 * Methods may answer synchronously (the in-memory store does) or with a promise;
 * the runtime awaits only when given a promise.
 */
export interface SessionStore {
  /**
   * Appends one record to a session's log. Resolves once the record is durable;
   * rejects (or throws) if it is not, in which case the runtime refuses the message.
   */
  append(sessionId: string, record: LogRecord): void | Promise<void>;
  /** The session's records in append order, or `undefined` if the store has none. */
  read(
    sessionId: string,
  ): readonly LogRecord[] | undefined | Promise<readonly LogRecord[] | undefined>;
  /** Every stored session, for recovery. */
  loadAll(): Iterable<StoredSession> | AsyncIterable<StoredSession>;
  /** Removes a session's log (retention of terminal sessions). */
  delete?(sessionId: string): void | Promise<void>;
  /**
   * The runtime has evicted this terminal session from memory, so it will never
   * read its log again. A store that holds logs only for the runtime (the memory
   * store) may drop the records then, keeping the id reserved: `loadAll` yields it
   * with no records. A durable store keeps the log until its own retention.
   */
  evicted?(sessionId: string): void;
  /** Completes pending appends and releases resources. */
  close(): Promise<void>;
}
