import { readFile } from "node:fs";
import * as fs from "node:fs/promises";

/** An open file, as the store uses it. Node's `FileHandle` fits this shape. */
export interface FileStoreHandle {
  /** Writes `length` bytes of `buffer` from `offset` at file position `position`; may write fewer. */
  write(
    buffer: Uint8Array,
    offset: number,
    length: number,
    position: number,
  ): Promise<{ bytesWritten: number }>;
  /** fdatasync(2): the data and the size are durable when it resolves. */
  datasync(): Promise<void>;
  truncate(length: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * The file-system calls the store makes. The default is {@link nodeFileSystem};
 * tests inject a wrapper to simulate a full disk, a read-only mount or I/O
 * errors where the real conditions cannot be produced (for example as root).
 */
export interface FileStoreFileSystem {
  /** Creates a directory and its parents; succeeds if it exists. */
  mkdir(path: string): Promise<void>;
  readdir(path: string): Promise<string[]>;
  /** Rejects with ENOENT if nothing is there. */
  stat(path: string): Promise<{ isDirectory(): boolean }>;
  readFile(path: string): Promise<Uint8Array>;
  /** `"r+"` opens an existing file for positioned writes; `"wx"` creates a new one and fails if it exists. */
  open(path: string, flags: "r+" | "wx"): Promise<FileStoreHandle>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  /** Makes a directory's entries (created, renamed, removed files) durable. */
  syncDirectory(path: string): Promise<void>;
}

/** The real file system, through `node:fs/promises`. */
export const nodeFileSystem: FileStoreFileSystem = {
  async mkdir(path) {
    await fs.mkdir(path, { recursive: true });
  },
  readdir: (path) => fs.readdir(path),
  stat: (path) => fs.stat(path),
  // The callback form: fs/promises' readFile costs the event loop several more
  // round trips per file, which shows when recovery reads thousands of logs.
  readFile: (path) =>
    new Promise((resolve, reject) => {
      readFile(path, (error, bytes) => (error ? reject(error) : resolve(bytes)));
    }),
  open: (path, flags) => fs.open(path, flags, 0o644),
  rename: (from, to) => fs.rename(from, to),
  unlink: (path) => fs.unlink(path),
  async syncDirectory(path) {
    // Windows cannot open a directory for fsync, and NTFS makes the entry
    // durable with the file's own flush, so there is nothing to do there.
    if (process.platform === "win32") return;
    const handle = await fs.open(path, "r");
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  },
};

/** The `code` of a Node system error (`ENOSPC`, `EACCES`, ...), if it has one. */
export function errorCode(error: unknown): string | undefined {
  if (typeof error === "object" && error !== null && "code" in error) {
    const { code } = error as { code: unknown };
    if (typeof code === "string") return code;
  }
  return undefined;
}

/** Writes all of `bytes` at `position`, looping over short writes. */
export async function writeFully(
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
