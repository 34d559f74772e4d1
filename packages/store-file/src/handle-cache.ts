import type { FileStoreFileSystem, FileStoreHandle } from "./file-system.js";
import type { SessionLog } from "./session-log.js";

/**
 * The session logs' open file handles, at most `maxOpenFiles` at once: beyond
 * it the least recently used is closed, so any number of sessions fits within
 * the process's descriptor limit.
 */
export class HandleCache {
  /** Sessions with an open handle, least recently used first. */
  private readonly openLogs = new Map<string, SessionLog>();
  private opening = 0;
  private readonly closing = new Set<Promise<void>>();

  constructor(
    private readonly fs: FileStoreFileSystem,
    readonly maxOpenFiles: number,
  ) {}

  /** Handles open now. */
  get size(): number {
    return this.openLogs.size;
  }

  /** The log's handle, opened for positioned writes if it is not open. */
  async handleFor(log: SessionLog): Promise<FileStoreHandle> {
    if (log.handle) {
      this.openLogs.delete(log.sessionId);
      this.openLogs.set(log.sessionId, log);
      return log.handle;
    }
    return this.open(log, "r+");
  }

  // The cap counts handles open, being opened and being closed, and victims are
  // chosen synchronously, so concurrent openers of one checkpoint cannot overshoot
  // it. A checkpoint writes at most `maxOpenFiles` logs at once, so unless every
  // handle is in use there is one to close.
  async open(log: SessionLog, flags: "r+" | "wx"): Promise<FileStoreHandle> {
    this.opening++;
    try {
      for (;;) {
        let excess = this.openLogs.size + this.opening + this.closing.size - this.maxOpenFiles;
        if (excess <= 0) break;
        for (const candidate of this.openLogs.values()) {
          if (excess === 0) break;
          if (candidate.busy) continue;
          void this.drop(candidate);
          excess--;
        }
        if (this.closing.size === 0) break;
        await Promise.all([...this.closing]);
      }
      const handle = await this.fs.open(log.path, flags);
      log.handle = handle;
      this.openLogs.set(log.sessionId, log);
      return handle;
    } finally {
      this.opening--;
    }
  }

  /** Closes the log's handle, if it has one; close errors are of no consequence. */
  drop(log: SessionLog): Promise<void> {
    const handle = log.handle;
    if (!handle) return Promise.resolve();
    log.handle = undefined;
    this.openLogs.delete(log.sessionId);
    const closing: Promise<void> = handle
      .close()
      .catch(() => {})
      .finally(() => this.closing.delete(closing));
    this.closing.add(closing);
    return closing;
  }

  async closeAll(): Promise<void> {
    for (const log of this.openLogs.values()) void this.drop(log);
    await Promise.all([...this.closing]);
  }
}
