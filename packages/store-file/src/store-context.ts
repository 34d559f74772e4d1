import type { RuntimeLogger } from "@macp/core";
import { errorCode, type FileStoreFileSystem } from "./file-system.js";
import { describe } from "./store-errors.js";

// What every part of the file store shares: where it lives, how it reaches the
// disk, where it reports, and its counters; plus the small file operations the
// parts have in common.

/** Counters since the store was created; `FileStore.stats()` is derived from them. */
export interface StoreCounters {
  appends: number;
  failedAppends: number;
  batches: number;
  journalSyncs: number;
  logSyncs: number;
  generationSyncs: number;
  directorySyncs: number;
  checkpoints: number;
  bytesWritten: number;
  journalBytesWritten: number;
  maxRecordsPerFsync: number;
  deletes: number;
}

export interface StoreContext {
  /** The absolute data directory. */
  readonly directory: string;
  readonly logsDirectory: string;
  readonly journalPath: string;
  readonly fs: FileStoreFileSystem;
  readonly logger: RuntimeLogger;
  readonly counters: StoreCounters;
}

export function newCounters(): StoreCounters {
  return {
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
}

export async function truncateFile(
  context: StoreContext,
  path: string,
  length: number,
): Promise<void> {
  const handle = await context.fs.open(path, "r+");
  try {
    await handle.truncate(length);
    await handle.datasync();
  } finally {
    await handle.close();
  }
}

/** Whether the file is gone afterwards. */
export async function removeFile(
  context: StoreContext,
  path: string,
  what: string,
): Promise<boolean> {
  try {
    await context.fs.unlink(path);
    context.logger.warn(`removed ${what}`, { path });
    return true;
  } catch (error) {
    if (errorCode(error) === "ENOENT") return true;
    context.logger.warn(`could not remove ${what}`, { path, error: describe(error) });
    return false;
  }
}

export async function syncDirectoryQuietly(context: StoreContext, path: string): Promise<void> {
  try {
    await context.fs.syncDirectory(path);
    context.counters.directorySyncs++;
  } catch {
    // Only the durability of a removal or of a new empty directory is at stake.
  }
}

export async function forEachConcurrently<T>(
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

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1 && parts[0]) return parts[0];
  return Buffer.concat(parts);
}
