import { FileStoreError } from "./file-store-error.js";
import { errorCode } from "./file-system.js";
import type { SessionLog } from "./session-log.js";

// The store's errors, one place for their wording.

/** A system error as one line: its code (if the message lacks it) and its message. */
export function describe(error: unknown): string {
  const code = errorCode(error);
  const message = error instanceof Error ? error.message : String(error);
  return code && !message.includes(code) ? `${code}: ${message}` : message;
}

export function unusable(message: string, cause?: unknown): FileStoreError {
  return new FileStoreError("UNUSABLE_DIRECTORY", message, { cause });
}

export function closedError(): FileStoreError {
  return new FileStoreError("CLOSED", "the file store is closed");
}

export function deletedError(sessionId: string): FileStoreError {
  return new FileStoreError(
    "SESSION_DELETED",
    `session ${sessionId} was deleted; its id cannot be used again`,
    { sessionId },
  );
}

export function quarantinedError(log: SessionLog): FileStoreError {
  return new FileStoreError(
    "SESSION_QUARANTINED",
    `session ${log.sessionId} is quarantined: ${log.reason}`,
    { sessionId: log.sessionId },
  );
}
