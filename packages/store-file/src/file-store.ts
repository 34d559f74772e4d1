import { join } from "node:path";
import { encodeLogRecord, type LogRecord, type SessionStore, type StoredSession } from "@macp/core";
import { Checkpointer } from "./checkpointer.js";
import { acquireDirectoryLock, type DirectoryLock } from "./directory-lock.js";
import { FileStoreError } from "./file-store-error.js";
import { type FileStoreOptions, resolveOptions } from "./file-store-options.js";
import { errorCode } from "./file-system.js";
import { MAX_FRAME_PAYLOAD } from "./frame.js";
import { GroupCommit } from "./group-commit.js";
import { HandleCache } from "./handle-cache.js";
import { replayJournal } from "./journal-replay.js";
import { JournalWriter } from "./journal-writer.js";
import { LogReader } from "./log-reader.js";
import type { SessionLog } from "./session-log.js";
import { SessionRegistry } from "./session-registry.js";
import { newCounters, removeFile, type StoreContext } from "./store-context.js";
import { LOGS_DIR, StoreDirectory } from "./store-directory.js";
import { closedError, deletedError, describe, quarantinedError } from "./store-errors.js";
import { Tombstones } from "./tombstones.js";

// The file store: a small object that puts its parts together and keeps the
// order between them. The parts: the data directory and its marker
// (store-directory.ts) and lock (directory-lock.ts), the tombstone list
// (tombstones.ts), the journal replay at start-up (journal-replay.ts), the group
// commit (group-commit.ts) writing through the journal (journal-writer.ts),
// checkpoints (checkpointer.ts), the log file handle cache (handle-cache.ts), and
// reads and recovery (log-reader.ts, log-inspection.ts).

/** Counters since the store was created. */
export interface FileStoreStats {
  /** Records made durable. */
  readonly appends: number;
  /** Records refused (I/O failure, deleted or quarantined session, closed store). */
  readonly failedAppends: number;
  /** Group commits: batches written to the journal and fsynced. */
  readonly batches: number;
  /**
   * Every fdatasync spent on records: `journalSyncs + logSyncs` plus one per new
   * journal generation.
   */
  readonly fsyncs: number;
  /** fdatasync calls on the journal, one per batch. */
  readonly journalSyncs: number;
  /** fdatasync calls on session logs, one per log written by a checkpoint. */
  readonly logSyncs: number;
  /** fsync calls on directories (new logs, removed logs, the journal). */
  readonly directorySyncs: number;
  /** Checkpoints that wrote something. */
  readonly checkpoints: number;
  /** Bytes written to session logs, headers included. */
  readonly bytesWritten: number;
  /** Bytes of batches written to the journal. */
  readonly journalBytesWritten: number;
  /** `appends / fsyncs`: records made durable per fsync, checkpoints included (0 before the first). */
  readonly recordsPerFsync: number;
  /** The most records one journal fsync made durable. */
  readonly maxRecordsPerFsync: number;
  /** Records durable in the journal and not yet written to their session logs. */
  readonly journalRecords: number;
  /** Session log files open now. */
  readonly openFiles: number;
  /** Sessions deleted (tombstoned). */
  readonly deletes: number;
  /**
   * Session logs tracked in memory: those appended to, read for an append or
   * recovered since the store opened, less those of evicted sessions whose records
   * are all in their log files (see {@link FileStore.evicted}).
   */
  readonly cachedSessions: number;
}

/** The durable file store: a {@link SessionStore} plus operations for hosts and tests. */
export interface FileStore extends SessionStore {
  /** The absolute data directory. */
  readonly directory: string;
  /** The retention the store was configured with (see {@link FileStoreOptions.deleteTerminalAfterMs}). */
  readonly deleteTerminalAfterMs: number;
  /**
   * Resolves once the directory is checked, the tombstone list is loaded and the
   * journal is replayed into the session logs; rejects if the directory is unusable.
   */
  ready(): Promise<void>;
  /**
   * Resolves once the record is durable: its batch is written to the journal and
   * fsynced. Appends of one session are kept in call order.
   */
  append(sessionId: string, record: LogRecord): Promise<void>;
  /** The session's durable records; `undefined` if it has none or was deleted. */
  read(sessionId: string): Promise<readonly LogRecord[] | undefined>;
  /**
   * Every session, for recovery, in file-name order: the records of each log, or an
   * `error` for a quarantined one; then every deleted session with no records, so
   * that its id stays reserved. A log that holds no complete record (a crash while
   * it was being created) is removed and not reported: nothing in it was acknowledged.
   * Call before the first append.
   */
  loadAll(): AsyncIterable<StoredSession>;
  /**
   * Deletes a session's log and tombstones its id, durably, so that the id is
   * never reused: later appends for it reject with `SESSION_DELETED`.
   */
  delete(sessionId: string): Promise<void>;
  /**
   * The runtime evicted this terminal session from memory: the store stops
   * tracking its log once every record of it is in its log file (at once, or
   * after the checkpoint that writes the records only the journal holds). The log
   * stays on disk until {@link delete}; `read`, `loadAll`, `delete` and appends
   * find it there again. An unknown or already evicted id is ignored.
   */
  evicted(sessionId: string): void;
  /** Whether the id was deleted (it must not be started again). */
  isDeleted(sessionId: string): Promise<boolean>;
  /** Every deleted session id, in deletion order. */
  tombstones(): Promise<readonly string[]>;
  /** Resolves once every append made before the call is durable (or has failed). */
  flush(): Promise<void>;
  /**
   * Writes every record appended before the call to its session log, fsyncs the
   * logs and their directory, and starts the journal over. Runs by itself when the
   * journal fills, and from {@link close}. Rejects (keeping the journal) if a log
   * cannot be written.
   */
  checkpoint(): Promise<void>;
  stats(): FileStoreStats;
  /** Flushes pending appends, checkpoints and closes every file; later calls reject with `CLOSED`. */
  close(): Promise<void>;
}

const JOURNAL = "journal.log";

// Two stores writing one directory would interleave their journal batches.
// Within a process this set prevents it; across processes, the directory lock.
const openDirectories = new Set<string>();

/**
 * Creates a durable store of session logs in a directory: one append-only,
 * checksummed log file per session, a write-ahead journal whose group commits
 * make concurrent appends of all sessions durable with one fsync, checkpoints,
 * crash recovery. Returns at once; the directory is checked in the background and
 * any problem surfaces from {@link FileStore.ready} and every operation (see
 * {@link openFileStore}).
 */
export function createFileStore(options: FileStoreOptions = {}): FileStore {
  return new FileSessionStore(options);
}

/** {@link createFileStore}, resolved once the directory is checked; rejects if it is unusable. */
export async function openFileStore(options: FileStoreOptions = {}): Promise<FileStore> {
  const store = createFileStore(options);
  await store.ready();
  return store;
}

class FileSessionStore implements FileStore {
  readonly directory: string;
  readonly deleteTerminalAfterMs: number;
  private readonly context: StoreContext;
  private readonly storeDirectory: StoreDirectory;
  private readonly registry: SessionRegistry;
  private readonly handles: HandleCache;
  private readonly deleted: Tombstones;
  private readonly journal: JournalWriter;
  private readonly checkpointer: Checkpointer;
  private readonly commits: GroupCommit;
  private readonly reader: LogReader;
  private readonly initialised: Promise<void>;
  private initDone = false;
  private closed = false;
  private closing: Promise<void> | undefined;
  private lock: DirectoryLock | undefined;
  /** Appends waiting for initialisation or for their log to be looked at (see flush). */
  private readonly waiting = new Set<Promise<void>>();

  constructor(options: FileStoreOptions) {
    const resolved = resolveOptions(options);
    this.directory = resolved.directory;
    this.deleteTerminalAfterMs = resolved.deleteTerminalAfterMs;
    const context: StoreContext = {
      directory: resolved.directory,
      logsDirectory: join(resolved.directory, LOGS_DIR),
      journalPath: join(resolved.directory, JOURNAL),
      fs: resolved.fileSystem,
      logger: resolved.logger,
      counters: newCounters(),
    };
    this.context = context;
    this.storeDirectory = new StoreDirectory(context);
    this.registry = new SessionRegistry(context.logsDirectory, context.logger);
    this.handles = new HandleCache(context.fs, resolved.maxOpenFiles);
    this.deleted = new Tombstones(context);
    this.journal = new JournalWriter(context, resolved.journalBytes);
    this.checkpointer = new Checkpointer(context, this.handles, this.journal, this.deleted, () =>
      this.releaseEvicted(),
    );
    this.commits = new GroupCommit(context, this.journal, this.checkpointer, () =>
      this.storeDirectory.upgrade(),
    );
    this.reader = new LogReader(context, this.storeDirectory, this.registry, this.deleted);
    if (openDirectories.has(this.directory)) {
      this.initialised = Promise.reject(
        new FileStoreError(
          "UNUSABLE_DIRECTORY",
          `data directory ${this.directory} is already open in this process`,
        ),
      );
    } else {
      openDirectories.add(this.directory);
      this.initialised = this.initialise().then(
        () => {
          this.initDone = true;
        },
        (error: unknown) => {
          openDirectories.delete(this.directory);
          throw error;
        },
      );
    }
    // The failure is reported by ready() and every operation; without this it
    // would also surface as an unhandled rejection if nobody asked yet.
    this.initialised.catch(() => {});
  }

  ready(): Promise<void> {
    return this.initialised;
  }

  private async initialise(): Promise<void> {
    await this.storeDirectory.ensureExists();
    this.lock = await acquireDirectoryLock(this.directory, this.context.logger);
    try {
      const entries = await this.storeDirectory.check();
      this.reader.logsAreAcknowledged = !this.storeDirectory.openedAsVersion1;
      await this.deleted.load();
      if (entries.includes(`${JOURNAL}.tmp`)) {
        // A journal whose creation never finished: nothing was ever written to it.
        await removeFile(this.context, `${this.context.journalPath}.tmp`, "an unfinished journal");
      }
      await replayJournal({
        context: this.context,
        journal: this.journal,
        registry: this.registry,
        tombstones: this.deleted,
        checkpointer: this.checkpointer,
      });
    } catch (error) {
      await this.releaseLock();
      throw error;
    }
  }

  // --- appends ------------------------------------------------------------------

  append(sessionId: string, record: LogRecord): Promise<void> {
    if (this.closed) return this.refuse(closedError());
    let payload: Uint8Array;
    try {
      payload = encodeLogRecord(record);
      if (payload.length > MAX_FRAME_PAYLOAD) {
        throw new FileStoreError(
          "RECORD_TOO_LARGE",
          `record of ${payload.length} bytes exceeds the ${MAX_FRAME_PAYLOAD}-byte limit`,
          { sessionId },
        );
      }
    } catch (error) {
      return this.refuse(error);
    }
    if (this.initDone) return this.enqueue(sessionId, payload);
    // Before initialisation completes every append waits on the same promise,
    // and `then` callbacks run in registration order, so call order is kept.
    return this.track(this.initialised.then(() => this.enqueue(sessionId, payload)));
  }

  private track(appended: Promise<void>): Promise<void> {
    this.waiting.add(appended);
    const settle = (): void => {
      this.waiting.delete(appended);
    };
    appended.then(settle, settle);
    return appended;
  }

  // No closed check here: an append made before close() is flushed by it, even
  // when it had to wait for initialisation first.
  private enqueue(sessionId: string, payload: Uint8Array): Promise<void> {
    if (this.deleted.has(sessionId)) return this.refuse(deletedError(sessionId));
    const log = this.registry.log(sessionId);
    if (log.state === "unknown" || log.gate) return this.track(this.enqueueAfterGate(log, payload));
    return this.enqueueKnown(log, payload);
  }

  // The first append of a session the store has not looked at yet reads its log
  // (to know where the next record goes). Its later appends queue behind it, in
  // call order, until that is done.
  private enqueueAfterGate(log: SessionLog, payload: Uint8Array): Promise<void> {
    const previous = log.gate ?? this.reader.resolveState(log);
    let result: Promise<void> = Promise.resolve();
    const gate = previous.then(
      () => {
        result = this.enqueueKnown(log, payload);
      },
      (error: unknown) => {
        result = this.refuse(error);
      },
    );
    log.gate = gate;
    void gate.then(() => {
      if (log.gate === gate) log.gate = undefined;
    });
    return gate.then(() => result);
  }

  private enqueueKnown(log: SessionLog, payload: Uint8Array): Promise<void> {
    if (this.deleted.has(log.sessionId)) return this.refuse(deletedError(log.sessionId));
    if (log.state === "quarantined") return this.refuse(quarantinedError(log));
    if (log.state === "unknown") {
      return this.refuse(
        new FileStoreError("IO_FAILED", `could not read the log of session ${log.sessionId}`, {
          sessionId: log.sessionId,
        }),
      );
    }
    return this.commits.enqueue(log, payload);
  }

  private refuse(error: unknown): Promise<never> {
    this.context.counters.failedAppends++;
    return Promise.reject(error);
  }

  // --- reads and recovery -------------------------------------------------------

  async read(sessionId: string): Promise<readonly LogRecord[] | undefined> {
    await this.usable();
    return this.reader.read(sessionId);
  }

  loadAll(): AsyncIterable<StoredSession> {
    return this.loadSessions();
  }

  private async *loadSessions(): AsyncGenerator<StoredSession> {
    await this.usable();
    await this.flush();
    yield* this.reader.sessions();
  }

  // --- deletion -----------------------------------------------------------------

  async delete(sessionId: string): Promise<void> {
    await this.usable();
    if (this.deleted.has(sessionId)) return;
    // From here on appends for the id are refused, and checkpoints skip its log;
    // the appends already queued land first, and a checkpoint writing it finishes.
    this.deleted.mark(sessionId);
    await this.flush();
    await this.commits.exclusiveDone();
    try {
      await this.deleted.record(sessionId);
    } catch (error) {
      this.deleted.unmark(sessionId);
      throw new FileStoreError(
        "IO_FAILED",
        `could not delete session ${sessionId}: ${describe(error)}`,
        { cause: error, sessionId },
      );
    }
    const { fs, counters, logger, logsDirectory } = this.context;
    counters.deletes++;
    const log = this.registry.log(sessionId);
    this.checkpointer.forget(log);
    await this.handles.drop(log);
    this.registry.forget(sessionId);
    // The tombstone is durable, so a crash from here on is finished by the next
    // loadAll, and the journal's records of the session are skipped by replay.
    try {
      await fs.unlink(log.path);
      await fs.syncDirectory(logsDirectory);
      counters.directorySyncs++;
    } catch (error) {
      if (errorCode(error) !== "ENOENT") {
        logger.warn("session deleted, but its log file stays until the next start", {
          sessionId,
          error: describe(error),
        });
      }
    }
  }

  // --- eviction -----------------------------------------------------------------

  evicted(sessionId: string): void {
    if (this.closed) return;
    if (!this.initDone) {
      // After the appends made before this call, which wait on the same promise.
      this.initialised.then(
        () => this.evicted(sessionId),
        () => {},
      );
      return;
    }
    this.registry.evict(sessionId, this.closeHandle);
  }

  // Forgetting a log closes its handle, so that the handle cache holds no log
  // the registry no longer tracks.
  private readonly closeHandle = (log: SessionLog): void => {
    void this.handles.drop(log);
  };

  private releaseEvicted(): void {
    this.registry.releaseEvicted(this.closeHandle);
  }

  async isDeleted(sessionId: string): Promise<boolean> {
    await this.usable();
    return this.deleted.has(sessionId);
  }

  async tombstones(): Promise<readonly string[]> {
    await this.usable();
    return [...this.deleted.ids()];
  }

  // --- lifecycle ----------------------------------------------------------------

  async flush(): Promise<void> {
    if (this.waiting.size > 0) await Promise.allSettled([...this.waiting]);
    await this.commits.settledQueue();
  }

  async checkpoint(): Promise<void> {
    await this.usable();
    await this.flush();
    await this.commits.requestCheckpoint();
  }

  stats(): FileStoreStats {
    const { journalSyncs, logSyncs, generationSyncs, ...rest } = this.context.counters;
    const fsyncs = journalSyncs + logSyncs + generationSyncs;
    return {
      ...rest,
      fsyncs,
      journalSyncs,
      logSyncs,
      recordsPerFsync: fsyncs === 0 ? 0 : rest.appends / fsyncs,
      journalRecords: this.checkpointer.pendingRecords,
      openFiles: this.handles.size,
      cachedSessions: this.registry.size,
    };
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.closed = true;
    try {
      await this.initialised;
    } catch {
      return;
    }
    await this.flush();
    try {
      await this.commits.requestCheckpoint();
    } catch (error) {
      this.context.logger.warn("the final checkpoint failed; the journal keeps the records", {
        error: describe(error),
      });
    }
    await this.deleted.settled();
    await this.handles.closeAll();
    await this.journal.close();
    await this.releaseLock();
    openDirectories.delete(this.directory);
  }

  private async releaseLock(): Promise<void> {
    const lock = this.lock;
    this.lock = undefined;
    await lock?.release().catch((error: unknown) => {
      this.context.logger.warn("could not release the data directory lock", {
        error: describe(error),
      });
    });
  }

  private async usable(): Promise<void> {
    if (this.closed) throw closedError();
    await this.initialised;
  }
}
