import { dirname, join, resolve } from "node:path";
import {
  encodeLogRecord,
  type LogRecord,
  type RuntimeLogger,
  type SessionStore,
  type StoredSession,
} from "@macp/core";
import { acquireDirectoryLock, type DirectoryLock, LOCK_FILE } from "./directory-lock.js";
import { FileStoreError } from "./file-store-error.js";
import {
  errorCode,
  type FileStoreFileSystem,
  type FileStoreHandle,
  nodeFileSystem,
  writeFully,
} from "./file-system.js";
import { encodeFrame, FRAME_OVERHEAD, MAX_FRAME_PAYLOAD, scanFrames } from "./frame.js";
import { JournalFile } from "./journal-file.js";
import {
  batchFrameSize,
  encodeBatch,
  JOURNAL_BODY,
  type JournalEntry,
  type JournalGeneration,
  type JournalRecord,
  scanJournal,
} from "./journal-format.js";
import {
  decodeHeader,
  encodeHeader,
  FileKind,
  isLogFileName,
  isZeroFilled,
  logFileName,
  sessionIdFromFileName,
} from "./log-file.js";
import {
  appendFrame,
  clearFrames,
  decodeAll,
  decodeOrThrow,
  framesOf,
  logBase,
  newSessionLog,
  pendingPayloads,
  prefixProblem,
  type SessionLog,
} from "./session-log.js";

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
   * sessions, journal replays, failed writes and checkpoints. Default: warnings and
   * errors to stderr, info dropped.
   */
  readonly logger?: RuntimeLogger;
  /**
   * Session log files kept open at once; the least recently used is closed beyond
   * it, so any number of sessions fits within the process's descriptor limit. The
   * journal's one handle comes on top. Default 512.
   */
  readonly maxOpenFiles?: number;
  /**
   * Durable retention of terminal sessions in ms (MACP_SESSION_DISK_RETENTION_SECS × 1000);
   * 0 keeps them forever. Default 0. The store cannot tell which sessions are terminal:
   * it only carries this value for the host, which calls {@link FileStore.delete} for
   * sessions that ended longer ago. Must be a non-negative integer.
   */
  readonly deleteTerminalAfterMs?: number;
  /**
   * Size of the write-ahead journal in bytes, allocated (written with zeros) when
   * the journal is created. Once a generation of the journal fills it, a checkpoint
   * writes the records to their session logs, fsyncs them and starts the journal
   * over; appends wait meanwhile. Larger means rarer, longer checkpoints, more to
   * replay after a crash, and up to this much record data held in memory. A batch
   * larger than the space left is still written (the file grows). Default 8 MiB;
   * an integer of at least 4096, else a `RangeError`.
   */
  readonly journalBytes?: number;
  /** The file-system calls. Default {@link nodeFileSystem}; tests inject failures here. */
  readonly fileSystem?: FileStoreFileSystem;
}

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

const MARKER = "macp-store.json";
const MARKER_TMP = "macp-store.json.tmp";
// Version 2 added the journal; a version 1 store (no journal) is read and upgraded
// when its journal is created, so that an older build refuses it from then on.
const MARKER_CONTENT = { format: "macp-store-file", version: 2 } as const;
const READABLE_VERSIONS: readonly unknown[] = [1, 2];
const LOGS_DIR = "logs";
const TOMBSTONES = "tombstones.log";
const JOURNAL = "journal.log";
const QUARANTINE_DIR = "quarantine";
const DEFAULT_MAX_OPEN_FILES = 512;
const DEFAULT_JOURNAL_BYTES = 8 * 1024 * 1024;
const MIN_JOURNAL_BYTES = 4096;
/** Most journal bytes one batch takes (a single larger record still goes alone). */
const MAX_BATCH_BYTES = 4 * 1024 * 1024;
/** Session logs written at once by a checkpoint; the libuv pool has 4 threads by default. */
const CHECKPOINT_PARALLELISM = 8;
/** Log files read ahead by loadAll. */
const READ_AHEAD = 32;
/** With checkpoints failing, the journal grows to this many times its size before appends are refused. */
const JOURNAL_GROWTH_LIMIT = 4;

// Two stores writing one directory would interleave their journal batches.
// Within a process this set prevents it; across processes, the directory lock.
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

interface PendingAppend extends JournalEntry {
  readonly log: SessionLog;
  offset: number;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
  /** {@link FileStore.flush} calls waiting for this append to settle. */
  waiters: (() => void)[] | undefined;
}

/** A group commit in flight. */
interface Batch {
  readonly seq: number;
  readonly position: number;
  readonly length: number;
  readonly items: readonly PendingAppend[];
}

type FileRead = { readonly bytes: Uint8Array } | { readonly error: unknown };

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

/** Batch buffers kept for reuse. */
const SPARE_BUFFERS = 2;
const BATCH_BUFFER_BYTES = 64 * 1024;

class FileSessionStore implements FileStore {
  readonly directory: string;
  readonly deleteTerminalAfterMs: number;
  private readonly logsDirectory: string;
  private readonly journalPath: string;
  private readonly fs: FileStoreFileSystem;
  private readonly logger: RuntimeLogger;
  private readonly maxOpenFiles: number;
  private readonly journalBytes: number;
  private readonly initialised: Promise<void>;
  private initDone = false;
  private closed = false;
  private closing: Promise<void> | undefined;
  private markerVersion: unknown = MARKER_CONTENT.version;
  private lock: DirectoryLock | undefined;
  /**
   * Whether every byte of a session log the journal does not cover was
   * acknowledged. Not in a version 1 store: it wrote logs directly, so a crash
   * could leave an unacknowledged torn tail or an empty new log behind.
   */
  private logsAreAcknowledged = true;

  private readonly sessions = new Map<string, SessionLog>();
  /** Sessions with an open handle, least recently used first. */
  private readonly openLogs = new Map<string, SessionLog>();
  private openingHandles = 0;
  private readonly closingHandles = new Set<Promise<void>>();
  /** Appends waiting for initialisation or for their log to be looked at (see flush). */
  private readonly waiting = new Set<Promise<void>>();
  private readonly spareBuffers: Buffer[] = [];

  // The journal and the commit pipeline.
  private journal: JournalFile | undefined;
  /** The generation found at start-up, until the journal is opened for writing. */
  private foundGeneration: JournalGeneration | undefined;
  private writePosition = JOURNAL_BODY;
  private nextSeq = 0;
  /** The highest batch acknowledged; every batch records it (see journal-format.ts). */
  private acked = -1;
  private queue: PendingAppend[] = [];
  private inFlight: Batch | undefined;
  /** A batch whose write or fsync failed, to be erased before the next one. */
  private refused: Batch | undefined;
  private tickScheduled = false;
  /** A rollback, checkpoint or journal opening is running: no batch starts meanwhile. */
  private exclusive: Promise<void> | undefined;
  private checkpointWaiters: { resolve: () => void; reject: (error: unknown) => void }[] = [];
  private checkpointRetryAt = 0;
  /** Starting a new generation failed: no batch goes to the journal until one starts. */
  private generationPending = false;
  /** Logs with records that only the journal holds. */
  private readonly dirty = new Set<SessionLog>();
  private pendingRecords = 0;
  private directorySyncPending = false;
  /** Journal records of sessions quarantined at start-up, saved aside before the journal starts over. */
  private readonly quarantinedRecords = new Map<
    SessionLog,
    { readonly offset: number; readonly payloads: readonly Uint8Array[] }
  >();

  private readonly deleted = new Set<string>();
  private tombstoneEnd = 0;
  private tombstoneChain: Promise<void> = Promise.resolve();

  private readonly counters = {
    appends: 0,
    failedAppends: 0,
    batches: 0,
    journalSyncs: 0,
    logSyncs: 0,
    generationSyncs: 0,
    directorySyncs: 0,
    checkpoints: 0,
    bytesWritten: 0,
    journalBytesWritten: 0,
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
    const journalBytes = options.journalBytes ?? DEFAULT_JOURNAL_BYTES;
    if (!Number.isSafeInteger(journalBytes) || journalBytes < MIN_JOURNAL_BYTES) {
      throw new RangeError(
        `journalBytes must be an integer of at least ${MIN_JOURNAL_BYTES}, got ${journalBytes}`,
      );
    }
    this.directory = resolve(options.directory ?? ".macp-data");
    this.logsDirectory = join(this.directory, LOGS_DIR);
    this.journalPath = join(this.directory, JOURNAL);
    this.deleteTerminalAfterMs = retention;
    this.maxOpenFiles = maxOpenFiles;
    this.journalBytes = journalBytes;
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
    this.lock = await acquireDirectoryLock(root, this.logger);
    try {
      await this.initialiseLocked();
    } catch (error) {
      await this.releaseLock();
      throw error;
    }
  }

  private async initialiseLocked(): Promise<void> {
    const root = this.directory;
    const entries = (await this.listDirectory(root)).filter((name) => !name.startsWith(LOCK_FILE));
    if (entries.includes(MARKER)) {
      await this.checkMarker();
      this.logsAreAcknowledged = this.markerVersion !== 1;
      // Initialisation creates logs/ before the marker, so a store without it
      // lost its logs to something else; recreating it would start empty.
      if (!entries.includes(LOGS_DIR)) {
        throw unusable(`${root} is a store but its ${LOGS_DIR}/ directory is missing`);
      }
    } else {
      await this.initialiseFresh(entries);
    }
    await this.loadTombstones();
    if (entries.includes(`${JOURNAL}.tmp`)) {
      // A journal whose creation never finished: nothing was ever written to it.
      await this.removeFile(`${this.journalPath}.tmp`, "an unfinished journal");
    }
    await this.recoverJournal();
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
    if (!READABLE_VERSIONS.includes(marker.version)) {
      throw unusable(
        `${this.directory} holds store format version ${String(marker.version)}; this build reads versions ${READABLE_VERSIONS.join(" and ")}`,
      );
    }
    this.markerVersion = marker.version;
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
    try {
      await this.fs.mkdir(this.logsDirectory);
      await this.writeMarker();
    } catch (error) {
      throw unusable(`cannot initialise data directory ${root}: ${describe(error)}`, error);
    }
  }

  private async writeMarker(): Promise<void> {
    const root = this.directory;
    const tmp = join(root, MARKER_TMP);
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
    this.counters.directorySyncs++;
    this.markerVersion = MARKER_CONTENT.version;
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

  // --- journal replay ---------------------------------------------------------

  /**
   * Puts the journal's live records back into their session logs: each record
   * names the byte offset of its frame in its log, so the log is kept up to the
   * journal's first record of the session and rewritten from there. Replaying a
   * journal twice writes the same bytes twice. Then a checkpoint makes the logs
   * durable and starts the journal over; if it cannot (a read-only directory), the
   * records stay in the journal and in memory, and reads still see them.
   */
  private async recoverJournal(): Promise<void> {
    let bytes: Uint8Array;
    try {
      bytes = await this.fs.readFile(this.journalPath);
    } catch (error) {
      if (errorCode(error) === "ENOENT") return;
      throw unusable(`cannot read the journal ${this.journalPath}: ${describe(error)}`, error);
    }
    const scan = scanJournal(bytes);
    if (scan.status === "bad") {
      throw unusable(
        `the journal ${this.journalPath} is damaged (${scan.reason}); it may hold acknowledged records. Restore it, or remove it to start without them.`,
      );
    }
    if (scan.status === "corrupt") {
      throw unusable(
        `the journal ${this.journalPath} is damaged (${scan.reason}); acknowledged records would be lost. Restore it, or remove it to start without them.`,
      );
    }
    this.foundGeneration = scan.generation;
    this.writePosition = scan.end;
    this.nextSeq = scan.nextSeq;
    this.acked = scan.nextSeq - 1;
    if (scan.records.length === 0) return;
    const bySession = new Map<string, JournalRecord[]>();
    for (const record of scan.records) {
      const records = bySession.get(record.sessionId);
      if (records) records.push(record);
      else bySession.set(record.sessionId, [record]);
    }
    this.logger.warn("replaying the journal into the session logs", {
      batches: scan.batches,
      records: scan.records.length,
      sessions: bySession.size,
    });
    await forEachConcurrently([...bySession], CHECKPOINT_PARALLELISM, ([sessionId, records]) =>
      this.replaySession(sessionId, records),
    );
    try {
      await this.checkpointNow();
    } catch (error) {
      this.logger.warn("the replayed records stay in the journal until a checkpoint succeeds", {
        error: describe(error),
      });
    }
  }

  private async replaySession(sessionId: string, records: readonly JournalRecord[]): Promise<void> {
    if (this.deleted.has(sessionId)) return;
    const log = this.sessionLog(sessionId);
    const first = (records[0] as JournalRecord).offset;
    let tail = first;
    for (const record of records) {
      if (record.offset !== tail) {
        this.quarantineReplay(
          log,
          records,
          `the journal's records of the session are not contiguous (byte ${record.offset}, expected ${tail})`,
        );
        return;
      }
      tail += FRAME_OVERHEAD + record.payload.length;
    }
    let bytes: Uint8Array | undefined;
    try {
      bytes = await this.fs.readFile(log.path);
    } catch (error) {
      if (errorCode(error) !== "ENOENT") {
        this.quarantineReplay(log, records, `cannot read ${log.path}: ${describe(error)}`);
        return;
      }
    }
    if (first === log.headerLength) {
      // The journal holds the whole log: whatever the file holds is rewritten.
      log.state = bytes === undefined ? "absent" : "stale";
      log.end = 0;
    } else {
      const problem = prefixProblem(bytes, sessionId, first);
      if (problem !== undefined) {
        this.quarantineReplay(log, records, problem);
        return;
      }
      log.state = "present";
      log.end = first;
      log.repairPending = bytes?.length !== first;
    }
    log.frames = framesOf(records.map((record) => record.payload));
    log.framesUsed = log.frames.length;
    log.framesCommitted = log.frames.length;
    log.pendingRecords = records.length;
    this.pendingRecords += records.length;
    this.dirty.add(log);
  }

  // The log is left exactly as found; the journal's records of the session are
  // saved aside by the next checkpoint, before the journal starts over.
  private quarantineReplay(
    log: SessionLog,
    records: readonly JournalRecord[],
    reason: string,
  ): void {
    this.quarantine(log, reason);
    this.quarantinedRecords.set(log, {
      offset: (records[0] as JournalRecord).offset,
      payloads: records.map((record) => record.payload),
    });
  }

  private async saveQuarantined(): Promise<void> {
    const directory = join(this.directory, QUARANTINE_DIR);
    await this.fs.mkdir(directory);
    await this.fs.syncDirectory(this.directory);
    for (const [log, { offset, payloads }] of this.quarantinedRecords) {
      const path = join(directory, `${log.fileName}.from-${offset}`);
      await this.fs.unlink(path).catch((error: unknown) => {
        if (errorCode(error) !== "ENOENT") throw error;
      });
      const handle = await this.fs.open(path, "wx");
      try {
        await writeFully(handle, framesOf(payloads), 0);
        await handle.datasync();
      } finally {
        await handle.close();
      }
      await this.fs.syncDirectory(directory);
      this.quarantinedRecords.delete(log);
      this.logger.error(
        `kept the journal's records of quarantined session ${log.sessionId} in ${path}`,
        { sessionId: log.sessionId, records: payloads.length, belongsAtOffset: offset },
      );
    }
  }

  // --- appends and group commit ---------------------------------------------

  append(sessionId: string, record: LogRecord): Promise<void> {
    if (this.closed) {
      this.counters.failedAppends++;
      return Promise.reject(closedError());
    }
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
      this.counters.failedAppends++;
      return Promise.reject(error);
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
    const log = this.sessionLog(sessionId);
    if (log.state === "unknown" || log.gate) return this.track(this.enqueueAfterGate(log, payload));
    return this.enqueueKnown(log, payload);
  }

  // The first append of a session the store has not looked at yet reads its log
  // (to know where the next record goes). Its later appends queue behind it, in
  // call order, until that is done.
  private enqueueAfterGate(log: SessionLog, payload: Uint8Array): Promise<void> {
    const previous = log.gate ?? this.resolveState(log);
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
    return new Promise<void>((resolvePromise, rejectPromise) => {
      this.queue.push({
        log,
        idBytes: log.idBytes,
        offset: 0,
        payload,
        resolve: resolvePromise,
        reject: rejectPromise,
        waiters: undefined,
      });
      this.pump(false);
    });
  }

  private refuse(error: unknown): Promise<never> {
    this.counters.failedAppends++;
    return Promise.reject(error);
  }

  /**
   * Decides what the journal does next; called whenever something changes. One
   * thing at a time: a batch on its way to disk, or an exclusive job (opening the
   * journal, erasing a refused batch, a checkpoint). Queued records go at the next
   * turn of the event loop, so that every append made in this turn joins them
   * (including those of the sessions the last batch just acknowledged); records
   * queued while a batch is on disk form the next batch.
   *
   * One batch in flight, not several overlapping: on the disks measured, two
   * concurrent fdatasyncs of one file take about as long as two in a row, so
   * overlap only halves the records each fsync carries (see the storage guide).
   */
  private pump(tick: boolean): void {
    if (this.exclusive || this.inFlight) return;
    if (this.refused) {
      this.runExclusive(() => this.rollback());
    } else if (this.checkpointDue()) {
      this.runExclusive(() => this.runCheckpoint());
    } else if (this.queue.length === 0) {
      return;
    } else if (!this.journal || this.generationPending) {
      this.runExclusive(() => this.prepareJournal());
    } else if (tick) {
      this.startBatch();
    } else {
      this.scheduleTick();
    }
  }

  private scheduleTick(): void {
    if (this.tickScheduled) return;
    this.tickScheduled = true;
    setImmediate(() => {
      this.tickScheduled = false;
      this.pump(true);
    });
  }

  private runExclusive(job: () => Promise<void>): void {
    this.exclusive = job()
      .catch((error: unknown) => {
        // Every job settles what it owns; this guards against a bug leaving
        // callers waiting forever.
        this.logger.error("file store internal error", { error: describe(error) });
        this.failAppends(this.queue.splice(0), error);
      })
      .finally(() => {
        this.exclusive = undefined;
        this.pump(true);
      });
  }

  private checkpointDue(): boolean {
    if (this.checkpointWaiters.length > 0) return true;
    if (this.writePosition < this.journalBytes) return false;
    if (this.writePosition >= this.checkpointRetryAt) return true;
    // Checkpoints keep failing: at the growth limit, each new append tries again.
    return this.writePosition >= JOURNAL_GROWTH_LIMIT * this.journalBytes && this.queue.length > 0;
  }

  private async prepareJournal(): Promise<void> {
    try {
      if (!this.journal) {
        if (this.foundGeneration) {
          this.journal = await JournalFile.open(this.fs, this.journalPath, this.foundGeneration);
        } else {
          if (this.markerVersion !== MARKER_CONTENT.version) await this.writeMarker();
          this.journal = await JournalFile.create(
            this.fs,
            this.journalPath,
            this.nextSeq,
            this.journalBytes,
          );
          this.counters.directorySyncs++;
          this.foundGeneration = this.journal.generation;
          this.writePosition = JOURNAL_BODY;
        }
      }
      if (this.generationPending) await this.startGeneration(this.journal);
    } catch (error) {
      this.failAppends(this.queue.splice(0), error);
    }
  }

  private startBatch(): void {
    const journal = this.journal as JournalFile;
    let count = 0;
    let entryBytes = 0;
    for (const item of this.queue) {
      const size = 4 + item.idBytes.length + 12 + item.payload.length;
      if (count > 0 && entryBytes + size > MAX_BATCH_BYTES) break;
      entryBytes += size;
      count++;
    }
    const items = count === this.queue.length ? this.queue : this.queue.slice(0, count);
    this.queue = count === this.queue.length ? [] : this.queue.slice(count);
    const seq = this.nextSeq;
    const pooled = this.takeBuffer(batchFrameSize(entryBytes));
    let frame: Buffer;
    try {
      for (const item of items) {
        const log = item.log;
        item.offset = logBase(log) + log.framesUsed;
        appendFrame(log, item.payload);
      }
      frame = encodeBatch(journal.generation, seq, this.acked, items, entryBytes, pooled);
    } catch (error) {
      this.giveBack(pooled);
      for (const item of items) item.log.framesUsed = item.log.framesCommitted;
      this.failAppends(items, error);
      return;
    }
    this.nextSeq++;
    const position = this.writePosition;
    this.writePosition += frame.length;
    const batch: Batch = { seq, position, length: frame.length, items };
    this.inFlight = batch;
    journal
      .write(frame, position)
      .finally(() => this.giveBack(pooled))
      .then(() => journal.sync())
      .then(
        () => this.settle(batch, undefined),
        (error: unknown) => this.settle(batch, error ?? new Error("journal write failed")),
      );
  }

  // Batch buffers are reused once their write has returned: a fresh buffer per
  // batch is most of what a batch costs the allocator.
  private takeBuffer(size: number): Buffer | undefined {
    if (size > BATCH_BUFFER_BYTES) return undefined;
    return this.spareBuffers.pop() ?? Buffer.allocUnsafeSlow(BATCH_BUFFER_BYTES);
  }

  private giveBack(buffer: Buffer | undefined): void {
    if (buffer && this.spareBuffers.length < SPARE_BUFFERS) this.spareBuffers.push(buffer);
  }

  private settle(batch: Batch, error: unknown): void {
    this.inFlight = undefined;
    if (error === undefined) {
      this.commit(batch);
    } else {
      this.refused = batch;
      this.failAppends(batch.items, error);
    }
    this.pump(false);
  }

  private commit(batch: Batch): void {
    for (const item of batch.items) {
      const log = item.log;
      log.framesCommitted = item.offset + FRAME_OVERHEAD + item.payload.length - logBase(log);
      log.pendingRecords++;
      this.dirty.add(log);
    }
    const count = batch.items.length;
    this.pendingRecords += count;
    this.acked = batch.seq;
    this.counters.appends += count;
    this.counters.batches++;
    this.counters.journalSyncs++;
    this.counters.journalBytesWritten += batch.length;
    if (count > this.counters.maxRecordsPerFsync) this.counters.maxRecordsPerFsync = count;
    for (const item of batch.items) {
      item.resolve();
      if (item.waiters) for (const waiter of item.waiters) waiter();
    }
  }

  private failAppends(items: readonly PendingAppend[], cause: unknown): void {
    if (items.length === 0) return;
    this.counters.failedAppends += items.length;
    const error =
      cause instanceof FileStoreError
        ? cause
        : new FileStoreError(
            "IO_FAILED",
            `could not make ${items.length} record(s) durable: ${describe(cause)}`,
            { cause },
          );
    if (!(cause instanceof FileStoreError)) {
      this.logger.error("append failed; the records were not kept", {
        records: items.length,
        sessions: new Set(items.map((item) => item.log.sessionId)).size,
        error: describe(cause),
      });
    }
    for (const item of items) {
      item.reject(error);
      if (item.waiters) for (const waiter of item.waiters) waiter();
    }
  }

  // The refused batch may be complete on disk: its magic is zeroed so that it
  // ends the journal, and the next batch is written in its place. If even that
  // fails, the next batch still overwrites it, and only a crash before then could
  // bring it back (see the storage guide).
  private async rollback(): Promise<void> {
    const refused = this.refused as Batch;
    this.refused = undefined;
    try {
      await this.journal?.invalidate(refused.position);
    } catch (error) {
      this.logger.error("could not erase a refused batch from the journal", {
        offset: refused.position,
        error: describe(error),
      });
    }
    this.writePosition = refused.position;
    this.nextSeq = refused.seq;
    for (const item of refused.items) item.log.framesUsed = item.log.framesCommitted;
  }

  // --- checkpoints -------------------------------------------------------------

  private requestCheckpoint(): Promise<void> {
    return new Promise<void>((resolvePromise, rejectPromise) => {
      this.checkpointWaiters.push({ resolve: resolvePromise, reject: rejectPromise });
      this.pump(false);
    });
  }

  private async runCheckpoint(): Promise<void> {
    const waiters = this.checkpointWaiters.splice(0);
    try {
      await this.checkpointNow();
      for (const waiter of waiters) waiter.resolve();
    } catch (error) {
      this.checkpointRetryAt = this.writePosition + Math.ceil(this.journalBytes / 8);
      this.logger.error("checkpoint failed; the journal keeps the records until one succeeds", {
        error: describe(error),
        journalInUse: this.writePosition,
      });
      if (this.writePosition >= JOURNAL_GROWTH_LIMIT * this.journalBytes) {
        this.failAppends(
          this.queue.splice(0),
          new FileStoreError(
            "IO_FAILED",
            `the journal is full and checkpoints fail: ${describe(error)}`,
            { cause: error },
          ),
        );
      }
      for (const waiter of waiters) waiter.reject(error);
    }
  }

  /**
   * Writes every log's journal-only records to it and fsyncs it, fsyncs `logs/`
   * if a log was created, then starts a new journal generation. Runs with no batch
   * in flight. A log that fails keeps its records (they stay in the journal) and
   * the journal is not started over.
   */
  private async checkpointNow(): Promise<void> {
    let failure: unknown;
    let wrote = false;
    await forEachConcurrently(
      [...this.dirty],
      Math.min(this.maxOpenFiles, CHECKPOINT_PARALLELISM),
      async (log) => {
        if (this.deleted.has(log.sessionId) || log.state === "quarantined") {
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
          this.logger.error("checkpoint could not write a session log", {
            sessionId: log.sessionId,
            error: describe(error),
          });
        } finally {
          log.busy = false;
        }
      },
    );
    if (this.directorySyncPending) {
      try {
        await this.fs.syncDirectory(this.logsDirectory);
        this.counters.directorySyncs++;
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
    if (this.writePosition > JOURNAL_BODY || this.generationPending) {
      this.journal ??= await JournalFile.open(
        this.fs,
        this.journalPath,
        this.foundGeneration as JournalGeneration,
      );
      await this.startGeneration(this.journal);
      wrote = true;
    }
    this.checkpointRetryAt = 0;
    if (wrote) this.counters.checkpoints++;
  }

  // If the new slot's write or fsync fails, it may or may not be on disk, so no
  // batch may be written until a later attempt succeeds: written under the old
  // generation they would be invisible after a restart that found the new one.
  private async startGeneration(journal: JournalFile): Promise<void> {
    this.generationPending = true;
    await journal.startGeneration(this.nextSeq);
    this.generationPending = false;
    this.writePosition = JOURNAL_BODY;
    this.counters.generationSyncs++;
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
      handle = await this.openHandle(log, "wx");
    } else if (log.state === "stale") {
      handle = await this.handleFor(log).catch((error: unknown) => {
        if (errorCode(error) !== "ENOENT") throw error;
        return this.openHandle(log, "wx");
      });
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
    this.counters.logSyncs++;
    this.counters.bytesWritten += bytes.length;
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
      this.logger.error("could not cut a failed write back; will retry before the next write", {
        sessionId: log.sessionId,
        offset: end,
        error: describe(error),
      });
      await this.dropHandle(log);
    }
  }

  // A log whose creation failed is removed, or else remembered as stale and
  // overwritten from byte 0; its records are still in the journal.
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
    const found = await this.inspect(log.path, log.fileName, { repair: true });
    // loadAll may have looked at it meanwhile; what it found is the same file.
    if (log.state !== "unknown") return;
    switch (found.kind) {
      case "missing":
        this.setKnown(log, "absent", 0);
        return;
      case "empty": {
        const gone = await this.removeFile(log.path, "a log with no complete record");
        this.setKnown(log, gone ? "absent" : "stale", 0);
        return;
      }
      case "corrupt":
        this.quarantine(log, found.reason);
        throw quarantinedError(log);
      case "ok":
        if (found.sessionId !== log.sessionId) {
          this.quarantine(log, `file belongs to session ${found.sessionId}`);
          throw quarantinedError(log);
        }
        this.setKnown(log, "present", found.end);
        log.repairPending = found.torn !== undefined;
        return;
    }
  }

  private setKnown(log: SessionLog, state: "absent" | "present" | "stale", end: number): void {
    log.state = state;
    log.end = end;
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
      log = newSessionLog(sessionId, this.logsDirectory);
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
  // chosen synchronously, so concurrent openers of one checkpoint cannot overshoot
  // it. A checkpoint writes at most `maxOpenFiles` logs at once, so unless every
  // handle is in use there is one to close.
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
    // Taken together, before reading: a checkpoint may move records from the
    // journal into the file meanwhile, and the file is read only up to `end`.
    const pending = log ? pendingPayloads(log) : [];
    if (log?.state === "absent" || log?.state === "stale") {
      return pending.length > 0 ? decodeOrThrow(sessionId, pending) : undefined;
    }
    const found = await this.inspect(
      log?.path ?? join(this.logsDirectory, logFileName(sessionId)),
      log?.fileName ?? logFileName(sessionId),
      { repair: false, limit: log?.state === "present" ? log.end : undefined },
    );
    switch (found.kind) {
      case "missing":
      case "empty":
        return pending.length > 0 ? decodeOrThrow(sessionId, pending) : undefined;
      case "corrupt":
        throw new FileStoreError(
          "SESSION_QUARANTINED",
          `log of session ${sessionId} is damaged: ${found.reason}`,
          { sessionId },
        );
      case "ok":
        return decodeOrThrow(
          sessionId,
          pending.length > 0 ? [...found.payloads, ...pending] : found.payloads,
        );
    }
  }

  loadAll(): AsyncIterable<StoredSession> {
    return this.loadSessions();
  }

  private async *loadSessions(): AsyncGenerator<StoredSession> {
    await this.usable();
    await this.flush();
    const names = (await this.listDirectory(this.logsDirectory)).sort();
    // Logs this store already knows are read up to where it wrote them, plus the
    // records only the journal holds; anything after `end` is a failed write.
    const known = new Map<string, SessionLog>();
    for (const log of this.sessions.values()) {
      if (log.state !== "unknown") known.set(log.fileName, log);
    }
    const files: string[] = [];
    for (const name of names) {
      if (isLogFileName(name)) files.push(name);
      else this.logger.warn(`ignoring unexpected file ${name} in ${this.logsDirectory}`);
    }
    // Reading ahead keeps the disk busy while records are decoded.
    const reads: (Promise<FileRead> | undefined)[] = [];
    const readAhead = (index: number): void => {
      const until = Math.min(files.length, index + READ_AHEAD);
      while (reads.length < until) {
        reads.push(this.readBytes(join(this.logsDirectory, files[reads.length] as string)));
      }
    };
    let removed = false;
    for (let index = 0; index < files.length; index++) {
      readAhead(index);
      const name = files[index] as string;
      const path = join(this.logsDirectory, name);
      let read = await (reads[index] as Promise<FileRead>);
      reads[index] = undefined;
      const log = known.get(name);
      if (log) {
        known.delete(name);
        if (log.state === "quarantined") {
          yield { sessionId: log.sessionId, error: log.reason };
          continue;
        }
        // What the file holds and what only the journal holds, taken together.
        const end = log.end;
        const pending = pendingPayloads(log);
        if (log.state === "absent" || log.state === "stale") {
          if (pending.length > 0) {
            yield this.storedFrom(log, [], pending);
            continue;
          }
          const gone = await this.removeFile(path, "a log with no complete record");
          removed ||= gone;
          log.state = gone ? "absent" : "stale";
          continue;
        }
        // Read ahead before a checkpoint moved records from memory into the file.
        if ("bytes" in read && read.bytes.length < end) read = await this.readBytes(path);
        const found = await this.inspectBytes(path, name, read, { repair: false, limit: end });
        const stored = this.storedFromInspection(log, found, pending);
        if (stored) yield stored;
        continue;
      }
      const found = await this.inspectBytes(path, name, read, { repair: true });
      switch (found.kind) {
        case "missing":
          continue;
        case "empty": {
          // Nothing in it was ever acknowledged (a new log is written with the
          // header and its first records together), so the id was never taken.
          const gone = await this.removeFile(
            path,
            "a log with no complete record (crash during creation)",
          );
          removed ||= gone;
          if (found.sessionId !== undefined) {
            const emptyLog = this.sessionLog(found.sessionId);
            if (emptyLog.state === "unknown") this.setKnown(emptyLog, gone ? "absent" : "stale", 0);
          }
          continue;
        }
        case "corrupt": {
          if (this.deleted.has(found.sessionId)) {
            // A delete recorded its tombstone but crashed before removing the log.
            removed ||= await this.removeFile(
              path,
              `the log of deleted session ${found.sessionId}`,
            );
            continue;
          }
          const corruptLog = this.sessionLog(found.sessionId);
          if (corruptLog.state !== "quarantined") this.quarantine(corruptLog, found.reason);
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
          const okLog = this.sessionLog(found.sessionId);
          const decoded = decodeAll(found.payloads);
          if (typeof decoded === "string") {
            this.quarantine(okLog, decoded);
            yield { sessionId: found.sessionId, error: decoded };
            continue;
          }
          if (okLog.state === "unknown") {
            this.setKnown(okLog, "present", found.end);
            okLog.repairPending = found.torn !== undefined;
          }
          yield { sessionId: found.sessionId, records: decoded };
        }
      }
    }
    if (removed) await this.syncDirectoryQuietly(this.logsDirectory);
    // Sessions created since the last checkpoint exist only in the journal.
    for (const log of known.values()) {
      if (log.pendingRecords > 0 && !this.deleted.has(log.sessionId)) {
        yield this.storedFrom(log, [], pendingPayloads(log));
      }
    }
    // A deleted session comes back as a log with no records: the runtime then
    // rebuilds nothing for it but keeps its id reserved (IDEM-8).
    for (const sessionId of this.deleted) yield { sessionId, records: [] };
  }

  private storedFromInspection(
    log: SessionLog,
    found: Inspection,
    pending: readonly Uint8Array[],
  ): StoredSession | undefined {
    switch (found.kind) {
      case "missing":
      case "empty":
        return pending.length > 0 ? this.storedFrom(log, [], pending) : undefined;
      case "corrupt":
        this.quarantine(log, found.reason);
        return { sessionId: log.sessionId, error: found.reason };
      case "ok": {
        const decoded = decodeAll(found.payloads);
        if (typeof decoded === "string") {
          this.quarantine(log, decoded);
          return { sessionId: log.sessionId, error: decoded };
        }
        return this.storedFrom(log, decoded, pending);
      }
    }
  }

  private storedFrom(
    log: SessionLog,
    records: LogRecord[],
    pending: readonly Uint8Array[],
  ): StoredSession {
    const decoded = decodeAll(pending);
    if (typeof decoded === "string") return { sessionId: log.sessionId, error: decoded };
    return {
      sessionId: log.sessionId,
      records: records.length > 0 ? [...records, ...decoded] : decoded,
    };
  }

  private async readBytes(path: string): Promise<FileRead> {
    try {
      const bytes = await this.fs.readFile(path);
      // A plain Uint8Array over the same memory: records decode from it without
      // copies, and their byte fields are not Buffers.
      return { bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) };
    } catch (error) {
      return { error };
    }
  }

  private async inspect(
    path: string,
    fileName: string,
    options: { readonly repair: boolean; readonly limit?: number | undefined },
  ): Promise<Inspection> {
    return this.inspectBytes(path, fileName, await this.readBytes(path), options);
  }

  /**
   * Checks one log file's bytes. With `repair`, a torn tail is cut off on disk
   * (the records before it stay); `limit` reads only the prefix of a log this
   * store has written.
   */
  private async inspectBytes(
    path: string,
    fileName: string,
    read: FileRead,
    options: { readonly repair: boolean; readonly limit?: number | undefined },
  ): Promise<Inspection> {
    const nameId = sessionIdFromFileName(fileName);
    if ("error" in read) {
      if (errorCode(read.error) === "ENOENT") return { kind: "missing" };
      return {
        kind: "corrupt",
        sessionId: nameId ?? fileName,
        reason: `cannot read ${path}: ${describe(read.error)}`,
      };
    }
    // Every byte of a log this store knows, and of a log no journal record covers
    // (checkpoints write only acknowledged records, and the journal keeps them
    // until the log is durable), was acknowledged: an empty log or a torn tail
    // there is lost data, never a write a crash cut short.
    const acknowledged = options.limit !== undefined || this.logsAreAcknowledged;
    let bytes = read.bytes;
    if (options.limit !== undefined) {
      if (bytes.length < options.limit) {
        return {
          kind: "corrupt",
          sessionId: nameId ?? fileName,
          reason: `the log ends at byte ${bytes.length}, but it held acknowledged records up to byte ${options.limit}`,
        };
      }
      bytes = bytes.subarray(0, options.limit);
    }
    const header = decodeHeader(bytes);
    if (header.status === "incomplete") {
      if (nameId === undefined || isZeroFilled(bytes) || isPrefixOf(bytes, nameId)) {
        if (acknowledged) return lostRecords(nameId ?? fileName, bytes.length);
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
    if (scan.frames.length === 0) {
      return acknowledged ? lostRecords(sessionId, bytes.length) : { kind: "empty", sessionId };
    }
    let torn: { reason: string; bytes: number } | undefined;
    if (scan.status === "torn") {
      torn = { reason: scan.reason ?? "torn write", bytes: bytes.length - scan.end };
      if (acknowledged) {
        return {
          kind: "corrupt",
          sessionId,
          reason: `the last record, at byte ${scan.end}, is cut off or damaged (${torn.reason}), but every record of this log was acknowledged`,
        };
      }
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
    // From here on appends for the id are refused, and checkpoints skip its log;
    // the appends already queued land first, and a checkpoint writing it finishes.
    this.deleted.add(sessionId);
    await this.flush();
    await this.exclusive;
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
    this.dropPending(log);
    this.quarantinedRecords.delete(log);
    await this.dropHandle(log);
    this.sessions.delete(sessionId);
    // The tombstone is durable, so a crash from here on is finished by the next
    // loadAll, and the journal's records of the session are skipped by replay.
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

  // Queued and in-flight appends settle in queue order, so waiting for the last
  // one waits for them all; those still waiting to be queued are tracked apart.
  async flush(): Promise<void> {
    if (this.waiting.size > 0) await Promise.allSettled([...this.waiting]);
    const last = this.queue.at(-1) ?? this.inFlight?.items.at(-1);
    if (last) {
      await new Promise<void>((done) => {
        last.waiters ??= [];
        last.waiters.push(done);
      });
    }
  }

  async checkpoint(): Promise<void> {
    await this.usable();
    await this.flush();
    await this.requestCheckpoint();
  }

  stats(): FileStoreStats {
    const { journalSyncs, logSyncs, generationSyncs, ...rest } = this.counters;
    const fsyncs = journalSyncs + logSyncs + generationSyncs;
    return {
      ...rest,
      fsyncs,
      journalSyncs,
      logSyncs,
      recordsPerFsync: fsyncs === 0 ? 0 : rest.appends / fsyncs,
      journalRecords: this.pendingRecords,
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
    try {
      await this.requestCheckpoint();
    } catch (error) {
      this.logger.warn("the final checkpoint failed; the journal keeps the records", {
        error: describe(error),
      });
    }
    await this.tombstoneChain;
    for (const log of this.openLogs.values()) void this.dropHandle(log);
    await Promise.all([...this.closingHandles]);
    await this.journal?.close().catch(() => {});
    this.journal = undefined;
    await this.releaseLock();
    openDirectories.delete(this.directory);
  }

  private async releaseLock(): Promise<void> {
    const lock = this.lock;
    this.lock = undefined;
    await lock?.release().catch((error: unknown) => {
      this.logger.warn("could not release the data directory lock", { error: describe(error) });
    });
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

function isPrefixOf(bytes: Uint8Array, sessionId: string): boolean {
  const expected = encodeHeader(FileKind.session, sessionId);
  if (bytes.length > expected.length) return false;
  return bytes.every((byte, index) => byte === expected[index]);
}

function lostRecords(sessionId: string, size: number): Inspection {
  return {
    kind: "corrupt",
    sessionId,
    reason: `the log holds no complete record (${size} bytes), but every log this store writes holds acknowledged records`,
  };
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

function deletedError(sessionId: string): FileStoreError {
  return new FileStoreError(
    "SESSION_DELETED",
    `session ${sessionId} was deleted; its id cannot be used again`,
    { sessionId },
  );
}

function quarantinedError(log: SessionLog): FileStoreError {
  return new FileStoreError(
    "SESSION_QUARANTINED",
    `session ${log.sessionId} is quarantined: ${log.reason}`,
    { sessionId: log.sessionId },
  );
}
