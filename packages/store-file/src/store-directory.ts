import { dirname, join } from "node:path";
import { LOCK_FILE } from "./directory-lock.js";
import { FileStoreError } from "./file-store-error.js";
import { errorCode, writeFully } from "./file-system.js";
import { type StoreContext, syncDirectoryQuietly } from "./store-context.js";
import { describe, unusable } from "./store-errors.js";

const MARKER = "macp-store.json";
const MARKER_TMP = "macp-store.json.tmp";
// Version 2 added the journal; a version 1 store (no journal) is read and upgraded
// when its journal is created, so that an older build refuses it from then on.
const MARKER_CONTENT = { format: "macp-store-file", version: 2 } as const;
const READABLE_VERSIONS: readonly unknown[] = [1, 2];
export const LOGS_DIR = "logs";

/**
 * The data directory as a store: created if missing, checked to be empty or a
 * store of a readable format version (never started empty on someone else's
 * data), and its marker file, `macp-store.json`.
 */
export class StoreDirectory {
  private markerVersion: unknown = MARKER_CONTENT.version;
  private version1 = false;

  constructor(private readonly context: StoreContext) {}

  /**
   * Whether the store was opened as version 1, which wrote logs without a journal:
   * a crash could leave an unacknowledged torn tail or an empty new log there.
   * Stays true after {@link upgrade}: the logs it wrote are still there.
   */
  get openedAsVersion1(): boolean {
    return this.version1;
  }

  /** Creates the directory with its parents if it is missing; refuses anything but a directory. */
  async ensureExists(): Promise<void> {
    const root = this.context.directory;
    let exists = true;
    try {
      const stat = await this.context.fs.stat(root);
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
        await this.context.fs.mkdir(root);
      } catch (error) {
        throw unusable(`cannot create data directory ${root}: ${describe(error)}`, error);
      }
      await syncDirectoryQuietly(this.context, dirname(root));
    }
  }

  /**
   * Checks the marker, or makes a fresh store of an empty directory. Returns the
   * directory's entries (the lock file left out).
   */
  async check(): Promise<string[]> {
    const root = this.context.directory;
    const entries = (await this.list(root)).filter((name) => !name.startsWith(LOCK_FILE));
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
    return entries;
  }

  /** Rewrites a version 1 marker as the current version (before the journal is created). */
  async upgrade(): Promise<void> {
    if (this.markerVersion !== MARKER_CONTENT.version) await this.writeMarker();
  }

  async list(path: string): Promise<string[]> {
    try {
      return await this.context.fs.readdir(path);
    } catch (error) {
      throw unusable(`cannot read directory ${path}: ${describe(error)}`, error);
    }
  }

  private async checkMarker(): Promise<void> {
    const path = join(this.context.directory, MARKER);
    let content: unknown;
    try {
      content = JSON.parse(Buffer.from(await this.context.fs.readFile(path)).toString("utf8"));
    } catch (error) {
      throw unusable(`cannot read ${path}: ${describe(error)}`, error);
    }
    const marker = content as { format?: unknown; version?: unknown } | null;
    if (marker?.format !== MARKER_CONTENT.format) {
      throw unusable(`${path} does not describe a macp-store-file directory`);
    }
    if (!READABLE_VERSIONS.includes(marker.version)) {
      throw unusable(
        `${this.context.directory} holds store format version ${String(marker.version)}; this build reads versions ${READABLE_VERSIONS.join(" and ")}`,
      );
    }
    this.markerVersion = marker.version;
    this.version1 = marker.version === 1;
  }

  // A directory without the marker becomes a store only if it is empty (or holds
  // what a crash during this very initialisation leaves); a non-empty one is
  // someone else's data, and starting empty on it would hide that data.
  private async initialiseFresh(entries: readonly string[]): Promise<void> {
    const root = this.context.directory;
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
    const logsDirectory = this.context.logsDirectory;
    if (entries.includes(LOGS_DIR) && (await this.list(logsDirectory)).length > 0) {
      throw unusable(`${root} has session logs but no ${MARKER}; refusing to guess its format`);
    }
    try {
      await this.context.fs.mkdir(logsDirectory);
      await this.writeMarker();
    } catch (error) {
      throw unusable(`cannot initialise data directory ${root}: ${describe(error)}`, error);
    }
  }

  private async writeMarker(): Promise<void> {
    const { fs, directory: root } = this.context;
    const tmp = join(root, MARKER_TMP);
    await fs.unlink(tmp).catch((error: unknown) => {
      if (errorCode(error) !== "ENOENT") throw error;
    });
    const handle = await fs.open(tmp, "wx");
    try {
      await writeFully(handle, Buffer.from(`${JSON.stringify(MARKER_CONTENT)}\n`), 0);
      await handle.datasync();
    } finally {
      await handle.close();
    }
    await fs.rename(tmp, join(root, MARKER));
    await fs.syncDirectory(root);
    this.context.counters.directorySyncs++;
    this.markerVersion = MARKER_CONTENT.version;
  }
}
