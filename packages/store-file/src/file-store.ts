import { dirname, join, resolve } from "node:path";
import {
  decodeLogRecord,
  encodeLogRecord,
  type LogRecord,
  type RuntimeLogger,
  type SessionStore,
  type StoredSession,
} from "@macp/core";
import { FileStoreError } from "./file-store-error.js";
import {
  errorCode,
  type FileStoreFileSystem,
  type FileStoreHandle,
  nodeFileSystem,
} from "./file-system.js";
import { encodeFrame, MAX_FRAME_PAYLOAD, scanFrames } from "./frame.js";
import {
  decodeHeader,
  encodeHeader,
  FileKind,
  isLogFileName,
  isZeroFilled,
  logFileName,
  sessionIdFromFileName,
} from "./log-file.js";

/** Options of {@link createFileStore}. Every field is optional. */
export interface FileStoreOptions {
  /**
   * The data directory (MACP_DATA_DIR), resolved against the working directory.
   * Created with its parents if missing. Default `".macp-data"`.
   * An existing directory must be empty or already hold a store of this format;
   * anything else (including the reference runtime's `sessions/` layout) is refused
   * with an `UNUSABLE_DIRECTORY` error rather than started empty.
   */
  readonly directory?: string;
  /**
   * Receives the lines an operator must see: torn tails cut off, quarantined
   * sessions, failed writes and their rollback. Default: warnings and errors to
   * stderr, info dropped.
   */
  readonly logger?: RuntimeLogger;
  /**
   * Log files kept open at once; the least recently used is closed beyond it, so
   * any number of sessions fits within the process's descriptor limit. Default 512.
   */
  readonly maxOpenFiles?: number;
  /**
   * Durable retention of terminal sessions in ms (MACP_SESSION_DISK_RETENTION_SECS × 1000);
   * 0 keeps them forever. Default 0. The store cannot tell which sessions are terminal:
   * it only carries this value for the host, which calls {@link FileStore.delete} for
   * sessions that ended longer ago. Must be a non-negative integer.
   */
  readonly deleteTerminalAfterMs?: number;
  /** The file-system calls. Default {@link nodeFileSystem}; tests inject failures here. */
  readonly fileSystem?: FileStoreFileSystem;
}

/** Counters since the store was created. */
export interface FileStoreStats {
  /** Records made durable. */
  readonly appends: number;
  /** Records refused (I/O failure, deleted or quarantined session, closed store). */
  readonly failedAppends: number;
  /** Group commits run. */
  readonly batches: number;
  /** fdatasync calls on session logs; each covers every record its batch wrote to that file. */
  readonly fsyncs: number;
  /** fsync calls on directories (new logs, removed logs). */
  readonly directorySyncs: number;
  /** Bytes written to session logs, headers included. */
  readonly bytesWritten: number;
  /** `appends / fsyncs`: how well group commit shares fsyncs (0 before the first). */
  readonly recordsPerFsync: number;
  /** The most records one fsync made durable. */
  readonly maxRecordsPerFsync: number;
  /** Log files open now. */
  readonly openFiles: number;
  /** Sessions deleted (tombstoned). */
  readonly deletes: number;
}

/** The durable file store: a {@link SessionStore} plus operations for hosts and tests. */
export interface FileStore extends SessionStore {
  /** The absolute data directory. */
  readonly directory: string;
  /** The retention the store was configured with (see {@link FileStoreOptions.deleteTerminalAfterMs}). */
  readonly deleteTerminalAfterMs: number;
  /** Resolves once the directory is checked and the tombstone list is loaded; rejects if unusable. */
  ready(): Promise<void>;
  /** Resolves once the record is fsynced. Appends of one session are kept in call order. */
  append(sessionId: string, record: LogRecord): Promise<void>;
  /** The session's durable records, read from disk; `undefined` if it has none or was deleted. */
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
  /** Whether the id was deleted (it must not be started again). */
  isDeleted(sessionId: string): Promise<boolean>;
  /** Every deleted session id, in deletion order. */
  tombstones(): Promise<readonly string[]>;
  /** Resolves once every append made before the call is durable (or has failed). */
  flush(): Promise<void>;
  stats(): FileStoreStats;
  /** Flushes pending appends and closes every file; later calls reject with `CLOSED`. */
  close(): Promise<void>;
}

const MARKER = "macp-store.json";
const MARKER_TMP = "macp-store.json.tmp";
const MARKER_CONTENT = { format: "macp-store-file", version: 1 } as const;
const LOGS_DIR = "logs";
const TOMBSTONES = "tombstones.log";
const DEFAULT_MAX_OPEN_FILES = 512;

// Two stores writing one directory would interleave frames; within a process
// that is cheap to prevent. Across processes it is the operator's job (as with
// the reference runtime: one runtime per data directory).
const openDirectories = new Set<string>();

const stderrLogger: RuntimeLogger = {
  info() {},
  warn(message, fields) {
    console.warn(`macp-store-file: ${message}`, fields ?? "");
  },
  error(message, fields) {
    console.error(`macp-store-file: ${message}`, fields ?? "");
  },
};

/**
 * Creates a durable store of session logs in a directory: one append-only,
 * checksummed log file per session, group-committed fsyncs, crash recovery.
 * Returns at once; the directory is checked in the background and any problem
 * surfaces from {@link FileStore.ready} and every operation (see {@link openFileStore}).
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

/** What the store knows about one session's log file. */
interface SessionLog {
  readonly sessionId: string;
  readonly path: string;
  /**
   * unknown: not looked at yet; absent: no file; present: valid up to `end`;
   * stale: a file whose creation was refused and could not be removed, holding
   * nothing acknowledged (rewritten from byte 0 by the next write);
   * quarantined: damaged, never written again by this store.
   */
  state: "unknown" | "absent" | "present" | "stale" | "quarantined";
  /** Offset just past the last durable record. */
  end: number;
  /** Bytes past `end` may be on disk (a failed write): truncate before writing again. */
  repairPending: boolean;
  reason: string;
  handle: FileStoreHandle | undefined;
  /** Being written by the running batch: its handle must not be closed. */
  busy: boolean;
}

interface PendingAppend {
  readonly frame: Uint8Array;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

type Inspection =
  | { readonly kind: "missing" }
  /** The file holds no complete record: a crash during its creation. */
  | { readonly kind: "empty"; readonly sessionId: string | undefined }
  | { readonly kind: "corrupt"; readonly sessionId: string; readonly reason: string }
  | {
      readonly kind: "ok";
      readonly sessionId: string;
      readonly payloads: Uint8Array[];
      readonly end: number;
      /** Set when a torn tail follows `end`. */
      readonly torn: { readonly reason: string; readonly bytes: number } | undefined;
    };

class FileSessionStore implements FileStore {
  readonly directory: string;
  readonly deleteTerminalAfterMs: number;
  private readonly logsDirectory: string;
  private readonly fs: FileStoreFileSystem;
  private readonly logger: RuntimeLogger;
  private readonly maxOpenFiles: number;
  private readonly initialised: Promise<void>;
  private initDone = false;
  private closed = false;
  private closing: Promise<void> | undefined;

  private readonly sessions = new Map<string, SessionLog>();
  /** Sessions with an open handle, least recently used first. */
  private readonly openLogs = new Map<string, SessionLog>();
  private openingHandles = 0;
  private readonly closingHandles = new Set<Promise<void>>();
  private queue = new Map<SessionLog, PendingAppend[]>();
  private committing: Promise<void> | undefined;

  private readonly deleted = new Set<string>();
  private tombstoneEnd = 0;
  private tombstoneChain: Promise<void> = Promise.resolve();

  private readonly counters = {
    appends: 0,
    failedAppends: 0,
    batches: 0,
    fsyncs: 0,
    directorySyncs: 0,
    bytesWritten: 0,
    maxRecordsPerFsync: 0,
    deletes: 0,
  };

  constructor(options: FileStoreOptions) {
    const maxOpenFiles = options.maxOpenFiles ?? DEFAULT_MAX_OPEN_FILES;
    if (!Number.isInteger(maxOpenFiles) || maxOpenFiles < 1) {
      throw new RangeError(`maxOpenFiles must be a positive integer, got ${maxOpenFiles}`);
    }
    const retention = options.deleteTerminalAfterMs ?? 0;
    if (!Number.isSafeInteger(retention) || retention < 0) {
      throw new RangeError(
        `deleteTerminalAfterMs must be a non-negative integer, got ${retention}`,
      );
    }
    this.directory = resolve(options.directory ?? ".macp-data");
    this.logsDirectory = join(this.directory, LOGS_DIR);
    this.deleteTerminalAfterMs = retention;
    this.maxOpenFiles = maxOpenFiles;
    this.fs = options.fileSystem ?? nodeFileSystem;
    this.logger = options.logger ?? stderrLogger;
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

  // --- start-up -------------------------------------------------------------

  private async initialise(): Promise<void> {
    const root = this.directory;
    let exists = true;
    try {
      const stat = await this.fs.stat(root);
      if (!stat.isDirectory()) throw unusable(`${root} exists and is not a directory`);
    } catch (error) {
      if (error instanceof FileStoreError) throw error;
      if (errorCode(error) !== "ENOENT") {
        throw unusable(`cannot access data directory ${root}: ${describe(error)}`, error);
      }
      exists = false;
    }
    if (!exists) {
      try {
        await this.fs.mkdir(root);
      } catch (error) {
        throw unusable(`cannot create data directory ${root}: ${describe(error)}`, error);
      }
      await this.syncDirectoryQuietly(dirname(root));
    }
    const entries = await this.listDirectory(root);
    if (entries.includes(MARKER)) {
      await this.checkMarker();
      // Initialisation creates logs/ before the marker, so a store without it
      // lost its logs to something else; recreating it would start empty.
      if (!entries.includes(LOGS_DIR)) {
        throw unusable(`${root} is a store but its ${LOGS_DIR}/ directory is missing`);
      }
    } else {
      await this.initialiseFresh(entries);
    }
    await this.loadTombstones();
  }

  private async listDirectory(path: string): Promise<string[]> {
    try {
      return await this.fs.readdir(path);
    } catch (error) {
      throw unusable(`cannot read directory ${path}: ${describe(error)}`, error);
    }
  }

  private async checkMarker(): Promise<void> {
    const path = join(this.directory, MARKER);
    let content: unknown;
    try {
      content = JSON.parse(Buffer.from(await this.fs.readFile(path)).toString("utf8"));
    } catch (error) {
      throw unusable(`cannot read ${path}: ${describe(error)}`, error);
    }
    const marker = content as { format?: unknown; version?: unknown } | null;
    if (marker?.format !== MARKER_CONTENT.format) {
      throw unusable(`${path} does not describe a macp-store-file directory`);
    }
    if (marker.version !== MARKER_CONTENT.version) {
      throw unusable(
        `${this.directory} holds store format version ${String(marker.version)}; this build reads version ${MARKER_CONTENT.version}`,
      );
    }
  }

  // A directory without the marker becomes a store only if it is empty (or holds
  // what a crash during this very initialisation leaves); a non-empty one is
  // someone else's data, and starting empty on it would hide that data.
  private async initialiseFresh(entries: readonly string[]): Promise<void> {
    const root = this.directory;
    if (entries.includes("storage_version.json") || entries.includes("sessions")) {
      throw unusable(
        `${root} holds the reference runtime's file layout (sessions/<id>/log.jsonl); this store cannot read it. Use another MACP_DATA_DIR.`,
      );
    }
    const foreign = entries.filter((name) => name !== MARKER_TMP && name !== LOGS_DIR);
    if (foreign.length > 0) {
      throw unusable(
        `${root} is not empty and is not a macp-store-file directory (no ${MARKER}); found ${foreign.slice(0, 3).join(", ")}`,
      );
    }
    if (entries.includes(LOGS_DIR) && (await this.listDirectory(this.logsDirectory)).length > 0) {
      throw unusable(`${root} has session logs but no ${MARKER}; refusing to guess its format`);
    }
    const tmp = join(root, MARKER_TMP);
    try {
      await this.fs.mkdir(this.logsDirectory);
      await this.fs.unlink(tmp).catch((error: unknown) => {
        if (errorCode(error) !== "ENOENT") throw error;
      });
      const handle = await this.fs.open(tmp, "wx");
      try {
        await writeFully(handle, Buffer.from(`${JSON.stringify(MARKER_CONTENT)}\n`), 0);
        await handle.datasync();
      } finally {
        await handle.close();
      }
      await this.fs.rename(tmp, join(root, MARKER));
      await this.fs.syncDirectory(root);
    } catch (error) {
      throw unusable(`cannot initialise data directory ${root}: ${describe(error)}`, error);
    }
  }

  private async loadTombstones(): Promise<void> {
    const path = join(this.directory, TOMBSTONES);
    let bytes: Uint8Array;
    try {
      bytes = await this.fs.readFile(path);
    } catch (error) {
      if (errorCode(error) === "ENOENT") return;
      throw unusable(`cannot read tombstone list ${path}: ${describe(error)}`, error);
    }
    const header = decodeHeader(bytes);
    if (header.status === "incomplete") {
      // Created by a delete that never finished: it tombstoned nothing.
      await this.removeFile(path, "an unfinished tombstone list");
      await this.syncDirectoryQuietly(this.directory);
      return;
    }
    if (header.status === "bad" || header.kind !== FileKind.tombstones) {
      const reason = header.status === "bad" ? header.reason : "wrong file kind";
      throw unusable(`tombstone list ${path} is damaged (${reason}); deleted ids could be reused`);
    }
    const scan = scanFrames(bytes, header.length);
    if (scan.status === "corrupt") {
      throw unusable(
        `tombstone list ${path} is damaged at offset ${scan.end} (${scan.reason}); deleted ids could be reused. Remove the damaged bytes to start.`,
      );
    }
    if (scan.frames.length === 0 && scan.status === "torn") {
      await this.removeFile(path, "an unfinished tombstone list");
      await this.syncDirectoryQuietly(this.directory);
      return;
    }
    const utf8 = new TextDecoder("utf-8", { fatal: false });
    for (const frame of scan.frames) this.deleted.add(utf8.decode(frame.payload));
    this.tombstoneEnd = scan.end;
    if (scan.status === "torn") {
      this.logger.warn("cut off the torn tail of the tombstone list", {
        offset: scan.end,
        bytes: bytes.length - scan.end,
        reason: scan.reason,
      });
      // Left in place if the cut fails: the next delete truncates before it writes.
      await this.truncateFile(path, scan.end).catch(() => {});
    }
  }

  // --- appends and group commit ---------------------------------------------

  append(sessionId: string, record: LogRecord): Promise<void> {
    if (this.closed) {
      this.counters.failedAppends++;
      return Promise.reject(closedError());
    }
    let frame: Uint8Array;
    try {
      const payload = encodeLogRecord(record);
      if (payload.length > MAX_FRAME_PAYLOAD) {
        throw new FileStoreError(
          "RECORD_TOO_LARGE",
          `record of ${payload.length} bytes exceeds the ${MAX_FRAME_PAYLOAD}-byte limit`,
          { sessionId },
        );
      }
      frame = encodeFrame(payload);
    } catch (error) {
      this.counters.failedAppends++;
      return Promise.reject(error);
    }
    // Before initialisation completes every append waits on the same promise,
    // and `then` callbacks run in registration order, so call order is kept.
    if (this.initDone) return this.enqueue(sessionId, frame);
    return this.initialised.then(() => this.enqueue(sessionId, frame));
  }

  // No closed check here: an append made before close() is flushed by it, even
  // when it had to wait for initialisation first.
  private enqueue(sessionId: string, frame: Uint8Array): Promise<void> {
    if (this.deleted.has(sessionId)) {
      this.counters.failedAppends++;
      return Promise.reject(
        new FileStoreError(
          "SESSION_DELETED",
          `session ${sessionId} was deleted; its id cannot be used again`,
          { sessionId },
        ),
      );
    }
    const log = this.sessionLog(sessionId);
    if (log.state === "quarantined") {
      this.counters.failedAppends++;
      return Promise.reject(quarantinedError(log));
    }
    return new Promise<void>((resolvePromise, rejectPromise) => {
      const pending = this.queue.get(log);
      const entry = { frame, resolve: resolvePromise, reject: rejectPromise };
      if (pending) pending.push(entry);
      else this.queue.set(log, [entry]);
      this.committing ??= this.commitLoop();
    });
  }

  // One batch at a time: whatever is queued while a batch is on disk forms the
  // next one, so under load each fsync carries many records and an idle store
  // adds no delay beyond one turn of the event loop.
  private async commitLoop(): Promise<void> {
    await new Promise<void>((next) => setImmediate(next));
    while (this.queue.size > 0) {
      const batch = this.queue;
      this.queue = new Map();
      try {
        await this.commitBatch(batch);
      } catch (error) {
        // commitBatch settles every append itself; this guards the loop against
        // a bug there leaving callers waiting forever.
        for (const [log, items] of batch) this.failAppends(log, items, error);
      }
    }
    this.committing = undefined;
  }

  private async commitBatch(batch: Map<SessionLog, PendingAppend[]>): Promise<void> {
    this.counters.batches++;
    const written: [SessionLog, PendingAppend[]][] = [];
    const created: [SessionLog, PendingAppend[]][] = [];
    await forEachConcurrently([...batch], this.maxOpenFiles, async ([log, items]) => {
      log.busy = true;
      try {
        const isNew = await this.writeAndSync(log, items);
        (isNew ? created : written).push([log, items]);
      } catch (error) {
        this.failAppends(log, items, error);
      } finally {
        log.busy = false;
      }
    });
    if (created.length > 0) {
      try {
        await this.fs.syncDirectory(this.logsDirectory);
        this.counters.directorySyncs++;
        written.push(...created);
      } catch (error) {
        // The records are on disk but their file might not survive a power cut:
        // refuse them and take the files away again.
        for (const [log, items] of created) {
          await this.rollbackNewFile(log);
          this.failAppends(log, items, error);
        }
      }
    }
    for (const [, items] of written) {
      this.counters.appends += items.length;
      for (const item of items) item.resolve();
    }
  }

  /** Writes the session's queued records in one write and fsyncs; true if it created the file. */
  private async writeAndSync(log: SessionLog, items: readonly PendingAppend[]): Promise<boolean> {
    await this.resolveState(log);
    const isNew = log.state === "absent" || log.state === "stale";
    const parts = items.map((item) => item.frame);
    if (isNew) parts.unshift(encodeHeader(FileKind.session, log.sessionId));
    const bytes = concat(parts);
    let handle: FileStoreHandle;
    if (log.state === "absent") {
      handle = await this.openHandle(log, "wx");
    } else if (log.state === "stale") {
      handle = await this.handleFor(log);
      await handle.truncate(0);
    } else {
      handle = await this.handleFor(log);
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
    this.counters.fsyncs++;
    this.counters.bytesWritten += bytes.length;
    this.counters.maxRecordsPerFsync = Math.max(this.counters.maxRecordsPerFsync, items.length);
    log.state = "present";
    log.end = start + bytes.length;
    return isNew;
  }

  private failAppends(log: SessionLog, items: readonly PendingAppend[], cause: unknown): void {
    this.counters.failedAppends += items.length;
    const error =
      cause instanceof FileStoreError
        ? cause
        : new FileStoreError(
            "IO_FAILED",
            `could not make ${items.length} record(s) of session ${log.sessionId} durable: ${describe(cause)}`,
            { cause, sessionId: log.sessionId },
          );
    if (!(cause instanceof FileStoreError)) {
      this.logger.error("append failed; the records were not kept", {
        sessionId: log.sessionId,
        records: items.length,
        error: describe(cause),
      });
    }
    for (const item of items) item.reject(error);
  }

  // A refused record must not reappear at the next start: cut the file back to
  // the last durable record and make that durable. If even that fails, the
  // handle is dropped and the next write truncates before it writes.
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
      this.logger.error("could not cut a failed write back; will retry before the next write", {
        sessionId: log.sessionId,
        offset: end,
        error: describe(error),
      });
      await this.dropHandle(log);
    }
  }

  // The refused records may be complete on disk, so the file must not be taken
  // for a log later: removed, or else remembered as stale and overwritten.
  private async rollbackNewFile(log: SessionLog): Promise<void> {
    await this.dropHandle(log);
    log.end = 0;
    log.repairPending = false;
    try {
      await this.fs.unlink(log.path);
      log.state = "absent";
    } catch (error) {
      if (errorCode(error) === "ENOENT") {
        log.state = "absent";
        return;
      }
      log.state = "stale";
      this.logger.error("could not remove a log whose creation failed; it will be overwritten", {
        sessionId: log.sessionId,
        error: describe(error),
      });
    }
  }

  /** Finds out what is on disk for a session the store has not looked at yet. */
  private async resolveState(log: SessionLog): Promise<void> {
    if (log.state === "quarantined") throw quarantinedError(log);
    if (log.state !== "unknown") return;
    const found = await this.inspect(log.path, logFileName(log.sessionId), { repair: true });
    switch (found.kind) {
      case "missing":
        log.state = "absent";
        return;
      case "empty":
        log.state = (await this.removeFile(log.path, "a log with no complete record"))
          ? "absent"
          : "stale";
        return;
      case "corrupt":
        this.quarantine(log, found.reason);
        throw quarantinedError(log);
      case "ok":
        if (found.sessionId !== log.sessionId) {
          this.quarantine(log, `file belongs to session ${found.sessionId}`);
          throw quarantinedError(log);
        }
        log.state = "present";
        log.end = found.end;
        log.repairPending = found.torn !== undefined;
        return;
    }
  }

  private quarantine(log: SessionLog, reason: string): void {
    log.state = "quarantined";
    log.reason = reason;
    this.logger.error(`session ${log.sessionId} quarantined: ${reason}`, {
      sessionId: log.sessionId,
      path: log.path,
    });
  }

  private sessionLog(sessionId: string): SessionLog {
    let log = this.sessions.get(sessionId);
    if (!log) {
      log = {
        sessionId,
        path: join(this.logsDirectory, logFileName(sessionId)),
        state: "unknown",
        end: 0,
        repairPending: false,
        reason: "",
        handle: undefined,
        busy: false,
      };
      this.sessions.set(sessionId, log);
    }
    return log;
  }

  // --- file handles ----------------------------------------------------------

  private async handleFor(log: SessionLog): Promise<FileStoreHandle> {
    if (log.handle) {
      this.openLogs.delete(log.sessionId);
      this.openLogs.set(log.sessionId, log);
      return log.handle;
    }
    return this.openHandle(log, "r+");
  }

  // The cap counts handles open, being opened and being closed, and victims are
  // chosen synchronously, so concurrent openers of one batch cannot overshoot it.
  // A batch runs at most `maxOpenFiles` sessions at once, so unless every handle
  // is in use there is one to close.
  private async openHandle(log: SessionLog, flags: "r+" | "wx"): Promise<FileStoreHandle> {
    this.openingHandles++;
    try {
      for (;;) {
        let excess =
          this.openLogs.size + this.openingHandles + this.closingHandles.size - this.maxOpenFiles;
        if (excess <= 0) break;
        for (const candidate of this.openLogs.values()) {
          if (excess === 0) break;
          if (candidate.busy) continue;
          void this.dropHandle(candidate);
          excess--;
        }
        if (this.closingHandles.size === 0) break;
        await Promise.all([...this.closingHandles]);
      }
      const handle = await this.fs.open(log.path, flags);
      log.handle = handle;
      this.openLogs.set(log.sessionId, log);
      return handle;
    } finally {
      this.openingHandles--;
    }
  }

  private dropHandle(log: SessionLog): Promise<void> {
    const handle = log.handle;
    if (!handle) return Promise.resolve();
    log.handle = undefined;
    this.openLogs.delete(log.sessionId);
    const closing: Promise<void> = handle
      .close()
      .catch(() => {})
      .finally(() => this.closingHandles.delete(closing));
    this.closingHandles.add(closing);
    return closing;
  }

  // --- reads and recovery -----------------------------------------------------

  async read(sessionId: string): Promise<readonly LogRecord[] | undefined> {
    await this.usable();
    if (this.deleted.has(sessionId)) return undefined;
    const log = this.sessions.get(sessionId);
    if (log?.state === "quarantined") throw quarantinedError(log);
    if (log?.state === "absent" || log?.state === "stale") return undefined;
    const found = await this.inspect(
      log?.path ?? join(this.logsDirectory, logFileName(sessionId)),
      logFileName(sessionId),
      { repair: false, limit: log?.state === "present" ? log.end : undefined },
    );
    switch (found.kind) {
      case "missing":
      case "empty":
        return undefined;
      case "corrupt":
        throw new FileStoreError(
          "SESSION_QUARANTINED",
          `log of session ${sessionId} is damaged: ${found.reason}`,
          { sessionId },
        );
      case "ok": {
        const decoded = decodeAll(found.payloads);
        if (typeof decoded === "string") {
          throw new FileStoreError(
            "SESSION_QUARANTINED",
            `log of session ${sessionId} is damaged: ${decoded}`,
            { sessionId },
          );
        }
        return decoded;
      }
    }
  }

  loadAll(): AsyncIterable<StoredSession> {
    return this.loadSessions();
  }

  private async *loadSessions(): AsyncGenerator<StoredSession> {
    await this.usable();
    await this.flush();
    const names = (await this.listDirectory(this.logsDirectory)).sort();
    // Logs this store has written already end where its last fsync ended;
    // anything after that is a failed write, never part of the history.
    const written = new Map<string, number>();
    for (const log of this.sessions.values()) {
      if (log.state === "present" || log.state === "stale") {
        written.set(logFileName(log.sessionId), log.end);
      }
    }
    let removed = false;
    for (const name of names) {
      if (!isLogFileName(name)) {
        this.logger.warn(`ignoring unexpected file ${name} in ${this.logsDirectory}`);
        continue;
      }
      const path = join(this.logsDirectory, name);
      const limit = written.get(name);
      const found = await this.inspect(path, name, { repair: limit === undefined, limit });
      switch (found.kind) {
        case "missing":
          continue;
        case "empty": {
          // Nothing in it was ever acknowledged (the first write carries the
          // header and the SessionStart together), so the id was never taken.
          const gone = await this.removeFile(
            path,
            "a log with no complete record (crash during creation)",
          );
          removed ||= gone;
          if (found.sessionId !== undefined) {
            this.sessionLog(found.sessionId).state = gone ? "absent" : "stale";
          }
          continue;
        }
        case "corrupt": {
          const log = this.sessionLog(found.sessionId);
          if (log.state !== "quarantined") this.quarantine(log, found.reason);
          yield { sessionId: found.sessionId, error: found.reason };
          continue;
        }
        case "ok": {
          if (this.deleted.has(found.sessionId)) {
            // A delete recorded its tombstone but crashed before removing the log.
            await this.removeFile(path, `the log of deleted session ${found.sessionId}`);
            removed = true;
            continue;
          }
          const log = this.sessionLog(found.sessionId);
          const decoded = decodeAll(found.payloads);
          if (typeof decoded === "string") {
            this.quarantine(log, decoded);
            yield { sessionId: found.sessionId, error: decoded };
            continue;
          }
          if (log.state === "unknown") {
            log.state = "present";
            log.end = found.end;
            log.repairPending = found.torn !== undefined;
          }
          yield { sessionId: found.sessionId, records: decoded };
        }
      }
    }
    if (removed) await this.syncDirectoryQuietly(this.logsDirectory);
    // A deleted session comes back as a log with no records: the runtime then
    // rebuilds nothing for it but keeps its id reserved (IDEM-8).
    for (const sessionId of this.deleted) yield { sessionId, records: [] };
  }

  /**
   * Reads and checks one log file. With `repair`, a torn tail is cut off on disk
   * (the records before it stay); `limit` reads only the durable prefix of a log
   * this store is writing.
   */
  private async inspect(
    path: string,
    fileName: string,
    options: { readonly repair: boolean; readonly limit?: number | undefined },
  ): Promise<Inspection> {
    const nameId = sessionIdFromFileName(fileName);
    let bytes: Uint8Array;
    try {
      bytes = await this.fs.readFile(path);
    } catch (error) {
      if (errorCode(error) === "ENOENT") return { kind: "missing" };
      return {
        kind: "corrupt",
        sessionId: nameId ?? fileName,
        reason: `cannot read ${path}: ${describe(error)}`,
      };
    }
    if (options.limit !== undefined) bytes = bytes.subarray(0, options.limit);
    const header = decodeHeader(bytes);
    if (header.status === "incomplete") {
      if (nameId === undefined || isZeroFilled(bytes) || isPrefixOf(bytes, nameId)) {
        return { kind: "empty", sessionId: nameId };
      }
      return { kind: "corrupt", sessionId: nameId, reason: "damaged file header" };
    }
    if (header.status === "bad") {
      return { kind: "corrupt", sessionId: nameId ?? fileName, reason: header.reason };
    }
    if (header.kind !== FileKind.session || logFileName(header.owner) !== fileName) {
      return {
        kind: "corrupt",
        sessionId: nameId ?? fileName,
        reason: `file header names session ${JSON.stringify(header.owner)}, which does not match the file name`,
      };
    }
    const sessionId = header.owner;
    const scan = scanFrames(bytes, header.length);
    if (scan.status === "corrupt") {
      return {
        kind: "corrupt",
        sessionId,
        reason: `damaged record at byte ${scan.end} (${scan.reason}) followed by further records`,
      };
    }
    if (scan.frames.length === 0) return { kind: "empty", sessionId };
    let torn: { reason: string; bytes: number } | undefined;
    if (scan.status === "torn") {
      torn = { reason: scan.reason ?? "torn write", bytes: bytes.length - scan.end };
      if (options.repair) {
        this.logger.warn(`cut off the torn tail of session ${sessionId}`, {
          sessionId,
          offset: scan.end,
          bytes: torn.bytes,
          reason: torn.reason,
        });
        try {
          await this.truncateFile(path, scan.end);
          torn = undefined;
        } catch (error) {
          this.logger.warn("could not cut the torn tail yet; will retry before the next write", {
            sessionId,
            error: describe(error),
          });
        }
      }
    }
    return {
      kind: "ok",
      sessionId,
      payloads: scan.frames.map((frame) => frame.payload),
      end: scan.end,
      torn,
    };
  }

  // --- deletion and tombstones ----------------------------------------------

  async delete(sessionId: string): Promise<void> {
    await this.usable();
    if (this.deleted.has(sessionId)) return;
    // From here on appends for the id are refused; the ones already queued land first.
    this.deleted.add(sessionId);
    await this.flush();
    const recorded = this.tombstoneChain.then(() => this.writeTombstone(sessionId));
    this.tombstoneChain = recorded.catch(() => {});
    try {
      await recorded;
    } catch (error) {
      this.deleted.delete(sessionId);
      throw new FileStoreError(
        "IO_FAILED",
        `could not delete session ${sessionId}: ${describe(error)}`,
        { cause: error, sessionId },
      );
    }
    this.counters.deletes++;
    const log = this.sessionLog(sessionId);
    await this.dropHandle(log);
    this.sessions.delete(sessionId);
    // The tombstone is durable, so a crash from here on is finished by the next loadAll.
    try {
      await this.fs.unlink(log.path);
      await this.fs.syncDirectory(this.logsDirectory);
      this.counters.directorySyncs++;
    } catch (error) {
      if (errorCode(error) !== "ENOENT") {
        this.logger.warn("session deleted, but its log file stays until the next start", {
          sessionId,
          error: describe(error),
        });
      }
    }
  }

  private async writeTombstone(sessionId: string): Promise<void> {
    const path = join(this.directory, TOMBSTONES);
    const frame = encodeFrame(Buffer.from(sessionId, "utf8"));
    const isNew = this.tombstoneEnd === 0;
    const bytes = isNew ? concat([encodeHeader(FileKind.tombstones, ""), frame]) : frame;
    const handle = isNew ? await this.fs.open(path, "wx") : await this.fs.open(path, "r+");
    try {
      if (!isNew) await handle.truncate(this.tombstoneEnd);
      await writeFully(handle, bytes, this.tombstoneEnd);
      await handle.datasync();
    } catch (error) {
      await handle.truncate(this.tombstoneEnd).catch(() => {});
      await handle.close().catch(() => {});
      if (isNew) await this.fs.unlink(path).catch(() => {});
      throw error;
    }
    await handle.close();
    if (isNew) {
      await this.fs.syncDirectory(this.directory);
      this.counters.directorySyncs++;
    }
    this.tombstoneEnd += bytes.length;
  }

  async isDeleted(sessionId: string): Promise<boolean> {
    await this.usable();
    return this.deleted.has(sessionId);
  }

  async tombstones(): Promise<readonly string[]> {
    await this.usable();
    return [...this.deleted];
  }

  // --- lifecycle ---------------------------------------------------------------

  async flush(): Promise<void> {
    while (this.committing) await this.committing;
  }

  stats(): FileStoreStats {
    const { appends, fsyncs } = this.counters;
    return {
      ...this.counters,
      recordsPerFsync: fsyncs === 0 ? 0 : appends / fsyncs,
      openFiles: this.openLogs.size,
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
    await this.tombstoneChain;
    for (const log of this.openLogs.values()) void this.dropHandle(log);
    await Promise.all([...this.closingHandles]);
    openDirectories.delete(this.directory);
  }

  private async usable(): Promise<void> {
    if (this.closed) throw closedError();
    await this.initialised;
  }

  // --- small file helpers -------------------------------------------------------

  private async truncateFile(path: string, length: number): Promise<void> {
    const handle = await this.fs.open(path, "r+");
    try {
      await handle.truncate(length);
      await handle.datasync();
    } finally {
      await handle.close();
    }
  }

  /** Whether the file is gone afterwards. */
  private async removeFile(path: string, what: string): Promise<boolean> {
    try {
      await this.fs.unlink(path);
      this.logger.warn(`removed ${what}`, { path });
      return true;
    } catch (error) {
      if (errorCode(error) === "ENOENT") return true;
      this.logger.warn(`could not remove ${what}`, { path, error: describe(error) });
      return false;
    }
  }

  private async syncDirectoryQuietly(path: string): Promise<void> {
    try {
      await this.fs.syncDirectory(path);
      this.counters.directorySyncs++;
    } catch {
      // Only the durability of a removal or of a new empty directory is at stake.
    }
  }
}

async function writeFully(
  handle: FileStoreHandle,
  bytes: Uint8Array,
  position: number,
): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, position + done);
    if (bytesWritten <= 0) {
      throw Object.assign(new Error("write made no progress"), { code: "EIO" });
    }
    done += bytesWritten;
  }
}

async function forEachConcurrently<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      await work(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1 && parts[0]) return parts[0];
  return Buffer.concat(parts);
}

function decodeAll(payloads: readonly Uint8Array[]): LogRecord[] | string {
  const records: LogRecord[] = [];
  for (const [index, payload] of payloads.entries()) {
    // A copy: decoded byte fields are views of their input, and a view of the
    // file buffer would keep the whole file alive (and be a Buffer, not a plain
    // Uint8Array) for as long as the session lives.
    const decoded = decodeLogRecord(new Uint8Array(payload));
    if (decoded.isErr()) return `record ${index + 1} does not decode: ${decoded.error}`;
    records.push(decoded.value);
  }
  return records;
}

function isPrefixOf(bytes: Uint8Array, sessionId: string): boolean {
  const expected = encodeHeader(FileKind.session, sessionId);
  if (bytes.length > expected.length) return false;
  return bytes.every((byte, index) => byte === expected[index]);
}

function describe(error: unknown): string {
  const code = errorCode(error);
  const message = error instanceof Error ? error.message : String(error);
  return code && !message.includes(code) ? `${code}: ${message}` : message;
}

function unusable(message: string, cause?: unknown): FileStoreError {
  return new FileStoreError("UNUSABLE_DIRECTORY", message, { cause });
}

function closedError(): FileStoreError {
  return new FileStoreError("CLOSED", "the file store is closed");
}

function quarantinedError(log: SessionLog): FileStoreError {
  return new FileStoreError(
    "SESSION_QUARANTINED",
    `session ${log.sessionId} is quarantined: ${log.reason}`,
    { sessionId: log.sessionId },
  );
}
