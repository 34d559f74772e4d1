import { randomInt } from "node:crypto";
import { dirname } from "node:path";
import {
  errorCode,
  type FileStoreFileSystem,
  type FileStoreHandle,
  writeFully,
} from "./file-system.js";
import {
  encodeJournalStart,
  encodeSlot,
  JOURNAL_BODY,
  type JournalGeneration,
  slotOffset,
} from "./journal-format.js";

const ZEROS = new Uint8Array(1024 * 1024);

/**
 * The journal file: its handle and its generation. The store decides what is
 * written where; this class only knows how the file is created, synced and
 * started afresh.
 */
export class JournalFile {
  private constructor(
    private readonly handle: FileStoreHandle,
    private current: JournalGeneration,
  ) {}

  get generation(): JournalGeneration {
    return this.current;
  }

  /**
   * Creates the journal through a temporary file, filled with zeros up to
   * `preallocate` bytes, fsynced, renamed into place, and its directory fsynced:
   * a journal that exists is always complete. Overwriting allocated blocks lets
   * fdatasync skip the metadata commit that growing a file costs on every batch.
   */
  static async create(
    fs: FileStoreFileSystem,
    path: string,
    base: number,
    preallocate: number,
  ): Promise<JournalFile> {
    const tmp = `${path}.tmp`;
    await fs.unlink(tmp).catch((error: unknown) => {
      if (errorCode(error) !== "ENOENT") throw error;
    });
    const generation = { salt: newSalt(), base, slot: 0 };
    const handle = await fs.open(tmp, "wx");
    try {
      await writeFully(handle, encodeJournalStart(generation.salt, base), 0);
      for (let at = JOURNAL_BODY; at < preallocate; at += ZEROS.length) {
        await writeFully(handle, ZEROS.subarray(0, Math.min(ZEROS.length, preallocate - at)), at);
      }
      await handle.datasync();
    } catch (error) {
      await handle.close().catch(() => {});
      await fs.unlink(tmp).catch(() => {});
      throw error;
    }
    await handle.close();
    await fs.rename(tmp, path);
    await fs.syncDirectory(dirname(path));
    return new JournalFile(await fs.open(path, "r+"), generation);
  }

  /** Opens an existing journal for writing, in the generation its scan found. */
  static async open(
    fs: FileStoreFileSystem,
    path: string,
    generation: JournalGeneration,
  ): Promise<JournalFile> {
    return new JournalFile(await fs.open(path, "r+"), generation);
  }

  write(bytes: Uint8Array, position: number): Promise<void> {
    return writeFully(this.handle, bytes, position);
  }

  sync(): Promise<void> {
    return this.handle.datasync();
  }

  /**
   * Makes a batch that was refused unreadable: a batch frame starts with its
   * magic, so zeroing the magic ends the journal there.
   */
  async invalidate(position: number): Promise<void> {
    await writeFully(this.handle, ZEROS.subarray(0, 4), position);
    await this.handle.datasync();
  }

  /**
   * Starts a new generation whose first batch is `base`: written to the slot not
   * in use, so a torn write leaves the current one. Everything in the journal
   * before this call is dropped, so it must already be in the session logs.
   */
  async startGeneration(base: number): Promise<void> {
    const next = { salt: newSalt(), base, slot: 1 - this.current.slot };
    await writeFully(this.handle, encodeSlot(next.salt, base), slotOffset(next.slot));
    await this.handle.datasync();
    this.current = next;
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}

function newSalt(): number {
  return randomInt(0x1_0000_0000);
}
