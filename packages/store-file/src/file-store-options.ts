import { resolve } from "node:path";
import type { RuntimeLogger } from "@macp/core";
import { type FileStoreFileSystem, nodeFileSystem } from "./file-system.js";

/** Options of {@link createFileStore}. Every field is optional. */
export interface FileStoreOptions {
  /**
   * The data directory (MACP_DATA_DIR), resolved against the working directory.
   * Created with its parents if missing. Default `".macp-data"`.
   * An existing directory must be empty or already hold a store of this format;
   * anything else (including the reference runtime's `sessions/` layout) is refused
   * with an `UNUSABLE_DIRECTORY` error rather than started empty. Another process
   * holding it is refused with `DIRECTORY_LOCKED` (see the storage guide).
   */
  readonly directory?: string;
  /**
   * Receives the lines an operator must see: quarantined sessions, lock take-overs,
   * journal replays, failed writes and checkpoints. Default: warnings and
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

const DEFAULT_MAX_OPEN_FILES = 512;
const DEFAULT_JOURNAL_BYTES = 8 * 1024 * 1024;
const MIN_JOURNAL_BYTES = 4096;

const stderrLogger: RuntimeLogger = {
  info() {},
  warn(message, fields) {
    console.warn(`macp-store-file: ${message}`, fields ?? "");
  },
  error(message, fields) {
    console.error(`macp-store-file: ${message}`, fields ?? "");
  },
};

/** {@link FileStoreOptions} with every default applied and checked. */
export interface ResolvedOptions {
  readonly directory: string;
  readonly logger: RuntimeLogger;
  readonly maxOpenFiles: number;
  readonly deleteTerminalAfterMs: number;
  readonly journalBytes: number;
  readonly fileSystem: FileStoreFileSystem;
}

/** Applies the defaults; throws a `RangeError` for a value out of range. */
export function resolveOptions(options: FileStoreOptions): ResolvedOptions {
  const maxOpenFiles = options.maxOpenFiles ?? DEFAULT_MAX_OPEN_FILES;
  if (!Number.isInteger(maxOpenFiles) || maxOpenFiles < 1) {
    throw new RangeError(`maxOpenFiles must be a positive integer, got ${maxOpenFiles}`);
  }
  const retention = options.deleteTerminalAfterMs ?? 0;
  if (!Number.isSafeInteger(retention) || retention < 0) {
    throw new RangeError(`deleteTerminalAfterMs must be a non-negative integer, got ${retention}`);
  }
  const journalBytes = options.journalBytes ?? DEFAULT_JOURNAL_BYTES;
  if (!Number.isSafeInteger(journalBytes) || journalBytes < MIN_JOURNAL_BYTES) {
    throw new RangeError(
      `journalBytes must be an integer of at least ${MIN_JOURNAL_BYTES}, got ${journalBytes}`,
    );
  }
  return {
    directory: resolve(options.directory ?? ".macp-data"),
    logger: options.logger ?? stderrLogger,
    maxOpenFiles,
    deleteTerminalAfterMs: retention,
    journalBytes,
    fileSystem: options.fileSystem ?? nodeFileSystem,
  };
}
