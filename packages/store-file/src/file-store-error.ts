/**
 * Why the file store refused an operation:
 * - `CLOSED`: the store was closed;
 * - `SESSION_DELETED`: the session id was deleted (tombstoned) and is never reused;
 * - `SESSION_QUARANTINED`: the session's log is damaged; it is left untouched for an operator;
 * - `IO_FAILED`: the file system refused (disk full, read-only, I/O error); nothing was kept;
 * - `RECORD_TOO_LARGE`: one record exceeds the frame limit;
 * - `UNUSABLE_DIRECTORY`: the data directory cannot be used (unreadable, not a store, another
 *   store of this process holds it, an unreadable tombstone list);
 * - `DIRECTORY_LOCKED`: another process holds the data directory's lock (the message names its pid).
 */
export type FileStoreErrorCode =
  | "CLOSED"
  | "SESSION_DELETED"
  | "SESSION_QUARANTINED"
  | "IO_FAILED"
  | "RECORD_TOO_LARGE"
  | "UNUSABLE_DIRECTORY"
  | "DIRECTORY_LOCKED";

/** The error every failing store operation rejects with; the underlying system error is its `cause`. */
export class FileStoreError extends Error {
  readonly code: FileStoreErrorCode;
  /** The session concerned, when there is one. */
  readonly sessionId: string | undefined;

  constructor(
    code: FileStoreErrorCode,
    message: string,
    options: { readonly cause?: unknown; readonly sessionId?: string } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "FileStoreError";
    this.code = code;
    this.sessionId = options.sessionId;
  }
}
