import { join } from "node:path";
import { errorCode, writeFully } from "./file-system.js";
import { encodeFrame, scanFrames } from "./frame.js";
import { decodeHeader, encodeHeader, FileKind } from "./log-file.js";
import {
  concat,
  removeFile,
  type StoreContext,
  syncDirectoryQuietly,
  truncateFile,
} from "./store-context.js";
import { describe, unusable } from "./store-errors.js";

const TOMBSTONES = "tombstones.log";

/**
 * The ids of deleted sessions, kept durably in `tombstones.log` (a header and one
 * frame per id, in deletion order) so that they are never reused.
 */
export class Tombstones {
  private readonly deleted = new Set<string>();
  private end = 0;
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly context: StoreContext) {}

  has(sessionId: string): boolean {
    return this.deleted.has(sessionId);
  }

  /** Every deleted id, in deletion order. */
  ids(): IterableIterator<string> {
    return this.deleted.values();
  }

  /** Refuses the id from now on, before its tombstone is durable. */
  mark(sessionId: string): void {
    this.deleted.add(sessionId);
  }

  /** Undoes {@link mark} when the tombstone could not be written. */
  unmark(sessionId: string): void {
    this.deleted.delete(sessionId);
  }

  /** Appends the id's tombstone and makes it durable; writes run one at a time. */
  record(sessionId: string): Promise<void> {
    const recorded = this.chain.then(() => this.write(sessionId));
    this.chain = recorded.catch(() => {});
    return recorded;
  }

  /** Resolves once every tombstone write has settled. */
  settled(): Promise<void> {
    return this.chain;
  }

  async load(): Promise<void> {
    const { context } = this;
    const path = join(context.directory, TOMBSTONES);
    let bytes: Uint8Array;
    try {
      bytes = await context.fs.readFile(path);
    } catch (error) {
      if (errorCode(error) === "ENOENT") return;
      throw unusable(`cannot read tombstone list ${path}: ${describe(error)}`, error);
    }
    const header = decodeHeader(bytes);
    if (header.status === "incomplete") {
      // Created by a delete that never finished: it tombstoned nothing.
      await removeFile(context, path, "an unfinished tombstone list");
      await syncDirectoryQuietly(context, context.directory);
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
      await removeFile(context, path, "an unfinished tombstone list");
      await syncDirectoryQuietly(context, context.directory);
      return;
    }
    const utf8 = new TextDecoder("utf-8", { fatal: false });
    for (const frame of scan.frames) this.deleted.add(utf8.decode(frame.payload));
    this.end = scan.end;
    if (scan.status === "torn") {
      context.logger.warn("cut off the torn tail of the tombstone list", {
        offset: scan.end,
        bytes: bytes.length - scan.end,
        reason: scan.reason,
      });
      // Left in place if the cut fails: the next delete truncates before it writes.
      await truncateFile(context, path, scan.end).catch(() => {});
    }
  }

  private async write(sessionId: string): Promise<void> {
    const { context } = this;
    const path = join(context.directory, TOMBSTONES);
    const frame = encodeFrame(Buffer.from(sessionId, "utf8"));
    const isNew = this.end === 0;
    const bytes = isNew ? concat([encodeHeader(FileKind.tombstones, ""), frame]) : frame;
    const handle = isNew ? await context.fs.open(path, "wx") : await context.fs.open(path, "r+");
    try {
      if (!isNew) await handle.truncate(this.end);
      await writeFully(handle, bytes, this.end);
      await handle.datasync();
    } catch (error) {
      await handle.truncate(this.end).catch(() => {});
      await handle.close().catch(() => {});
      if (isNew) await context.fs.unlink(path).catch(() => {});
      throw error;
    }
    await handle.close();
    if (isNew) {
      await context.fs.syncDirectory(context.directory);
      context.counters.directorySyncs++;
    }
    this.end += bytes.length;
  }
}
