import { join } from "node:path";
import { errorCode, type FileStoreHandle, writeFully } from "./file-system.js";
import type { HandleCache } from "./handle-cache.js";
import type { JournalWriter } from "./journal-writer.js";
import { encodeHeader, FileKind } from "./log-file.js";
import { clearFrames, framesOf, type SessionLog } from "./session-log.js";
import { concat, forEachConcurrently, type StoreContext } from "./store-context.js";
import { describe } from "./store-errors.js";
import type { Tombstones } from "./tombstones.js";

/** Session logs written at once by a checkpoint; the libuv pool has 4 threads by default. */
export const CHECKPOINT_PARALLELISM = 8;
const QUARANTINE_DIR = "quarantine";

/**
 * Moves records that only the journal holds into their session logs: the logs
 * with such records (`dirty`), how many records that is, and the journal records
 * of quarantined sessions, saved aside before the journal starts over.
 */
export class Checkpointer {
  /** Logs with records that only the journal holds. */
  private readonly dirty = new Set<SessionLog>();
  /** Records durable in the journal and not yet written to their session logs. */
  pendingRecords = 0;
  private directorySyncPending = false;
  /** Journal records of sessions quarantined at start-up, saved aside before the journal starts over. */
  private readonly quarantinedRecords = new Map<
    SessionLog,
    { readonly offset: number; readonly payloads: readonly Uint8Array[] }
  >();

  constructor(
    private readonly context: StoreContext,
    private readonly handles: HandleCache,
    private readonly journal: JournalWriter,
    private readonly tombstones: Tombstones,
    /** Called once the logs are written (or failed), none of them busy any more. */
    private readonly afterLogsWritten: () => void = () => {},
  ) {}

  /** Counts `records` more journal-only records of the log (its frames hold them already). */
  noteRecords(log: SessionLog, records: number): void {
    log.pendingRecords += records;
    this.pendingRecords += records;
    this.dirty.add(log);
  }

  /** Keeps a quarantined session's journal records, to be saved aside by the next checkpoint. */
  keepAside(log: SessionLog, offset: number, payloads: readonly Uint8Array[]): void {
    this.quarantinedRecords.set(log, { offset, payloads });
  }

  /** Drops everything waiting for the log: its session is deleted. */
  forget(log: SessionLog): void {
    this.dropPending(log);
    this.quarantinedRecords.delete(log);
  }

  /**
   * Writes every log's journal-only records to it and fsyncs it, fsyncs `logs/`
   * if a log was created, then starts a new journal generation. Runs with no batch
   * in flight. A log that fails keeps its records (they stay in the journal) and
   * the journal is not started over.
   */
  async run(): Promise<void> {
    const { context } = this;
    let failure: unknown;
    let wrote = false;
    await forEachConcurrently(
      [...this.dirty],
      Math.min(this.handles.maxOpenFiles, CHECKPOINT_PARALLELISM),
      async (log) => {
        if (this.tombstones.has(log.sessionId) || log.state === "quarantined") {
          this.dropPending(log);
          return;
        }
        log.busy = true;
        try {
          if (await this.writeLog(log)) this.directorySyncPending = true;
          wrote = true;
          if (log.framesCommitted === 0) this.dirty.delete(log);
        } catch (error) {
          failure ??= error;
          context.logger.error("checkpoint could not write a session log", {
            sessionId: log.sessionId,
            error: describe(error),
          });
        } finally {
          log.busy = false;
        }
      },
    );
    this.afterLogsWritten();
    if (this.directorySyncPending) {
      try {
        await context.fs.syncDirectory(context.logsDirectory);
        context.counters.directorySyncs++;
        this.directorySyncPending = false;
      } catch (error) {
        failure ??= error;
      }
    }
    if (failure === undefined && this.quarantinedRecords.size > 0) {
      try {
        await this.saveQuarantined();
      } catch (error) {
        failure = error;
      }
    }
    if (failure !== undefined) throw failure;
    if (this.journal.inUse) {
      await this.journal.startGeneration();
      wrote = true;
    }
    if (wrote) context.counters.checkpoints++;
  }

  /** Writes a log's journal-only records in one write and fsyncs; true if it created the file. */
  private async writeLog(log: SessionLog): Promise<boolean> {
    const committed = log.framesCommitted;
    if (committed === 0) return false;
    const records = log.pendingRecords;
    const isNew = log.state === "absent" || log.state === "stale";
    const frames = log.frames.subarray(0, committed);
    const bytes = isNew ? concat([encodeHeader(FileKind.session, log.sessionId), frames]) : frames;
    let handle: FileStoreHandle;
    if (log.state === "absent") {
      handle = await this.handles.open(log, "wx");
    } else if (log.state === "stale") {
      handle = await this.handles.handleFor(log).catch((error: unknown) => {
        if (errorCode(error) !== "ENOENT") throw error;
        return this.handles.open(log, "wx");
      });
      await handle.truncate(0);
    } else {
      handle = await this.handles.handleFor(log);
      if (log.repairPending) {
        await handle.truncate(log.end);
        log.repairPending = false;
      }
    }
    const start = isNew ? 0 : log.end;
    try {
      await writeFully(handle, bytes, start);
      await handle.datasync();
    } catch (error) {
      if (isNew) await this.rollbackNewFile(log);
      else await this.rollbackWrite(log, handle, start);
      throw error;
    }
    this.context.counters.logSyncs++;
    this.context.counters.bytesWritten += bytes.length;
    log.state = "present";
    log.end = start + bytes.length;
    // A checkpoint runs with no batch in flight, so every frame was written.
    if (log.framesUsed !== committed) throw new Error("a checkpoint ran with a batch in flight");
    clearFrames(log);
    this.pendingRecords -= records;
    return isNew;
  }

  private dropPending(log: SessionLog): void {
    this.pendingRecords -= log.pendingRecords;
    clearFrames(log);
    this.dirty.delete(log);
  }

  // A failed write must leave the log as it was: cut the file back to its last
  // good record and make that durable. If even that fails, the handle is dropped
  // and the next write truncates before it writes.
  private async rollbackWrite(
    log: SessionLog,
    handle: FileStoreHandle,
    end: number,
  ): Promise<void> {
    log.repairPending = true;
    try {
      await handle.truncate(end);
      await handle.datasync();
      log.repairPending = false;
    } catch (error) {
      this.context.logger.error(
        "could not cut a failed write back; will retry before the next write",
        { sessionId: log.sessionId, offset: end, error: describe(error) },
      );
      await this.handles.drop(log);
    }
  }

  // A log whose creation failed is removed, or else remembered as stale and
  // overwritten from byte 0; its records are still in the journal.
  private async rollbackNewFile(log: SessionLog): Promise<void> {
    await this.handles.drop(log);
    log.end = 0;
    log.repairPending = false;
    try {
      await this.context.fs.unlink(log.path);
      log.state = "absent";
    } catch (error) {
      if (errorCode(error) === "ENOENT") {
        log.state = "absent";
        return;
      }
      log.state = "stale";
      this.context.logger.error(
        "could not remove a log whose creation failed; it will be overwritten",
        { sessionId: log.sessionId, error: describe(error) },
      );
    }
  }

  private async saveQuarantined(): Promise<void> {
    const { fs, logger } = this.context;
    const directory = join(this.context.directory, QUARANTINE_DIR);
    await fs.mkdir(directory);
    await fs.syncDirectory(this.context.directory);
    for (const [log, { offset, payloads }] of this.quarantinedRecords) {
      const path = join(directory, `${log.fileName}.from-${offset}`);
      await fs.unlink(path).catch((error: unknown) => {
        if (errorCode(error) !== "ENOENT") throw error;
      });
      const handle = await fs.open(path, "wx");
      try {
        await writeFully(handle, framesOf(payloads), 0);
        await handle.datasync();
      } finally {
        await handle.close();
      }
      await fs.syncDirectory(directory);
      this.quarantinedRecords.delete(log);
      logger.error(
        `kept the journal's records of quarantined session ${log.sessionId} in ${path}`,
        { sessionId: log.sessionId, records: payloads.length, belongsAtOffset: offset },
      );
    }
  }
}
