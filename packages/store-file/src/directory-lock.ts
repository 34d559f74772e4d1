import { randomBytes } from "node:crypto";
import {
  link,
  readFile,
  readlink,
  rename,
  stat,
  unlink,
  utimes,
  writeFile,
} from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import type { RuntimeLogger } from "@macp/core";
import { FileStoreError } from "./file-store-error.js";
import { errorCode } from "./file-system.js";

// One process per data directory. Two writers would interleave their journal
// batches and each checkpoint would start the journal over under the other's
// records, losing acknowledged messages without a trace, so the second one must
// not start. Node has no flock(2), so the lock is a file created atomically
// (link(2) of a complete temporary file: it is never seen half-written) that
// names its holder, and a holder that no longer runs is detected at once from its
// pid, so a runtime killed with SIGKILL never blocks its own restart. Where the
// pid cannot be checked (a holder on another host, or in a container that is
// gone), the holder's heartbeat decides: it refreshes the file's mtime, and a lock
// not refreshed for LOCK_STALE_MS is abandoned.

/** The lock file's name in the data directory. */
export const LOCK_FILE = "macp-store.lock";
/** How often the holder refreshes the lock file's mtime. */
export const LOCK_REFRESH_MS = 10_000;
/** A lock whose holder cannot be checked by pid counts as abandoned after this long unrefreshed. */
export const LOCK_STALE_MS = 30_000;

/** What the lock file records about its holder. */
export interface LockHolder {
  readonly pid: number;
  readonly hostname: string;
  /** The kernel's boot id (Linux): a different one means the holder's machine has restarted. */
  readonly bootId: string | undefined;
  /** The holder's pid namespace (Linux), to tell whether its pid means anything here. */
  readonly pidNamespace: string | undefined;
  /** The holder's start time in clock ticks since boot (Linux), to detect a reused pid. */
  readonly startTime: string | undefined;
  /** Distinguishes this holder's lock from any other with the same pid. */
  readonly token: string;
  readonly acquiredAt: string;
}

/** A held lock; {@link DirectoryLock.release} gives it up. */
export interface DirectoryLock {
  readonly path: string;
  readonly holder: LockHolder;
  release(): Promise<void>;
}

const MAX_ATTEMPTS = 5;

/**
 * Takes the data directory's lock for this process, or rejects with a
 * `DIRECTORY_LOCKED` error naming the directory and the holder. A lock whose
 * holder is gone is taken over, with a warning. Resolves `undefined` (after a
 * warning) if the directory does not let this process create files: such a store
 * can only read, so it cannot damage another writer's data.
 */
export async function acquireDirectoryLock(
  directory: string,
  logger: RuntimeLogger,
): Promise<DirectoryLock | undefined> {
  const path = join(directory, LOCK_FILE);
  const holder: LockHolder = {
    ...(await thisProcess()),
    token: randomBytes(8).toString("hex"),
    acquiredAt: new Date().toISOString(),
  };
  const text = `${JSON.stringify(holder)}\n`;
  const tmp = `${path}.${holder.pid}.${holder.token}.tmp`;
  try {
    await writeFile(tmp, text, { flag: "wx" });
  } catch (error) {
    const code = errorCode(error);
    if (code === "EACCES" || code === "EROFS" || code === "EPERM") {
      logger.warn("cannot lock the data directory (not writable); continuing without the lock", {
        directory,
        error: code,
      });
      return undefined;
    }
    throw new FileStoreError(
      "UNUSABLE_DIRECTORY",
      `cannot lock data directory ${directory}: ${String(error)}`,
      { cause: error },
    );
  }
  try {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      if (await publish(tmp, path, text)) return startHolding(path, holder, logger);
      const found = await readLock(path);
      if (found === undefined) continue; // released meanwhile
      const verdict = await judge(found);
      if (verdict.alive) throw lockedError(directory, found, verdict.detail);
      if (await removeStale(path, found.text, holder)) {
        logger.warn("took over the lock of a runtime that is no longer running", {
          directory,
          pid: found.holder?.pid,
          hostname: found.holder?.hostname,
          reason: verdict.detail,
        });
      }
    }
    throw new FileStoreError(
      "DIRECTORY_LOCKED",
      `data directory ${directory} could not be locked: other processes keep taking ${LOCK_FILE}`,
    );
  } catch (error) {
    if (error instanceof FileStoreError) throw error;
    throw new FileStoreError(
      "UNUSABLE_DIRECTORY",
      `cannot lock data directory ${directory}: ${String(error)}`,
      { cause: error },
    );
  } finally {
    await unlink(tmp).catch(() => {});
  }
}

/** Codes of file systems without hard links (some network and FAT mounts). */
const NO_HARD_LINKS = new Set(["EPERM", "ENOTSUP", "EOPNOTSUPP", "ENOSYS"]);

/** Puts the lock file in place unless one exists; returns whether it did. */
async function publish(tmp: string, path: string, text: string): Promise<boolean> {
  try {
    await link(tmp, path);
    return true;
  } catch (error) {
    const code = errorCode(error);
    if (code === "EEXIST") return false;
    if (code === undefined || !NO_HARD_LINKS.has(code)) throw error;
  }
  // Created in place instead: a reader may then see it before it is written,
  // which is why an unreadable lock is only abandoned once it is old.
  try {
    await writeFile(path, text, { flag: "wx" });
    return true;
  } catch (error) {
    if (errorCode(error) === "EEXIST") return false;
    throw error;
  }
}

function startHolding(path: string, holder: LockHolder, logger: RuntimeLogger): DirectoryLock {
  // Only heartbeats: a failure is retried at the next one, and the pid check
  // still protects this lock on this machine meanwhile.
  const heartbeat = setInterval(() => {
    const now = new Date();
    utimes(path, now, now).catch((error: unknown) => {
      logger.warn("could not refresh the data directory lock", { path, error: String(error) });
    });
  }, LOCK_REFRESH_MS);
  heartbeat.unref();
  return {
    path,
    holder,
    async release() {
      clearInterval(heartbeat);
      const found = await readLock(path);
      if (found?.holder?.token !== holder.token) {
        logger.warn("the data directory lock is no longer this process's; left in place", {
          path,
        });
        return;
      }
      await unlink(path).catch(() => {});
    },
  };
}

interface FoundLock {
  readonly text: string;
  /** `undefined` when the file does not hold a lock this module wrote. */
  readonly holder: LockHolder | undefined;
  readonly ageMs: number;
}

async function readLock(path: string): Promise<FoundLock | undefined> {
  try {
    const [text, info] = await Promise.all([readFile(path, "utf8"), stat(path)]);
    return { text, holder: parseHolder(text), ageMs: Date.now() - info.mtimeMs };
  } catch (error) {
    if (errorCode(error) === "ENOENT") return undefined;
    throw error;
  }
}

function parseHolder(text: string): LockHolder | undefined {
  try {
    const value = JSON.parse(text) as Partial<LockHolder> | null;
    if (typeof value?.pid !== "number" || typeof value.token !== "string") return undefined;
    return {
      pid: value.pid,
      hostname: String(value.hostname ?? ""),
      bootId: value.bootId,
      pidNamespace: value.pidNamespace,
      startTime: value.startTime,
      token: value.token,
      acquiredAt: String(value.acquiredAt ?? ""),
    };
  } catch {
    return undefined;
  }
}

/** Whether the lock's holder may still be running, and why. */
async function judge(found: FoundLock): Promise<{ alive: boolean; detail: string }> {
  const holder = found.holder;
  // Unreadable: written in place and not finished yet, or damaged.
  if (holder === undefined) return byHeartbeat(found);
  const self = await thisProcess();
  if (holder.hostname !== self.hostname) {
    // Another machine, or another container of this one: its pid means nothing
    // here unless both share this kernel's pid namespace.
    const sharesPids =
      holder.bootId !== undefined &&
      holder.bootId === self.bootId &&
      holder.pidNamespace !== undefined &&
      holder.pidNamespace === self.pidNamespace;
    if (!sharesPids) return byHeartbeat(found);
  } else {
    if (differ(holder.bootId, self.bootId)) {
      return { alive: false, detail: "the machine has restarted since" };
    }
    // Same host name, other pid namespace: this container restarted, and every
    // process of its previous run is gone.
    if (differ(holder.pidNamespace, self.pidNamespace)) {
      return { alive: false, detail: "its container has restarted since" };
    }
  }
  // The caller has already checked that no store of this process holds the
  // directory, so a lock naming this very process is left over from an earlier
  // one that had the same pid.
  if (holder.pid === process.pid) return { alive: false, detail: "it names this process's pid" };
  const stat = await processStat(holder.pid);
  // A zombie has exited; only its parent has not collected its status yet.
  if (!isRunning(holder.pid) || stat?.state === "Z" || stat?.state === "X") {
    return { alive: false, detail: `pid ${holder.pid} is not running` };
  }
  if (differ(holder.startTime, stat?.startTime)) {
    return { alive: false, detail: `pid ${holder.pid} now belongs to another process` };
  }
  return { alive: true, detail: "it is running" };
}

function byHeartbeat(found: FoundLock): { alive: boolean; detail: string } {
  const unrefreshed = Math.round(found.ageMs / 1000);
  return found.ageMs > LOCK_STALE_MS
    ? { alive: false, detail: `not refreshed for ${unrefreshed} s` }
    : { alive: true, detail: `last refreshed ${unrefreshed} s ago` };
}

function differ(recorded: string | undefined, current: string | undefined): boolean {
  return recorded !== undefined && current !== undefined && recorded !== current;
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it runs, as another user.
    return errorCode(error) !== "ESRCH";
  }
}

/**
 * Moves the stale lock aside and deletes it, unless another process replaced it
 * after it was judged: then that process's lock is put back. Returns whether the
 * stale lock was removed.
 */
async function removeStale(path: string, staleText: string, self: LockHolder): Promise<boolean> {
  const aside = `${path}.stale-${self.pid}-${self.token}`;
  try {
    await rename(path, aside);
  } catch (error) {
    if (errorCode(error) === "ENOENT") return false;
    throw error;
  }
  const moved = await readFile(aside, "utf8").catch(() => staleText);
  if (moved !== staleText) await link(aside, path).catch(() => {});
  await unlink(aside).catch(() => {});
  return moved === staleText;
}

function lockedError(directory: string, found: FoundLock, detail: string): FileStoreError {
  const holder = found.holder;
  const where = holder?.hostname === hostname() ? "" : ` on host ${holder?.hostname}`;
  const who =
    holder === undefined
      ? "its lock file cannot be read"
      : `pid ${holder.pid}${where}, since ${holder.acquiredAt}`;
  return new FileStoreError(
    "DIRECTORY_LOCKED",
    `data directory ${directory} is in use by another runtime (${who}; ${detail}). ` +
      `Run one runtime per MACP_DATA_DIR. If no runtime uses it, delete ${join(directory, LOCK_FILE)}.`,
  );
}

type ProcessIdentity = Omit<LockHolder, "token" | "acquiredAt">;

let identity: Promise<ProcessIdentity> | undefined;

function thisProcess(): Promise<ProcessIdentity> {
  identity ??= (async () => ({
    pid: process.pid,
    hostname: hostname(),
    bootId: await readTrimmed("/proc/sys/kernel/random/boot_id"),
    pidNamespace: await readlink("/proc/self/ns/pid").catch(() => undefined),
    startTime: (await processStat(process.pid))?.startTime,
  }))();
  return identity;
}

async function readTrimmed(path: string): Promise<string | undefined> {
  try {
    return (await readFile(path, "utf8")).trim();
  } catch {
    return undefined;
  }
}

// Fields 3 (state) and 22 (start time in clock ticks since boot) of
// /proc/<pid>/stat; the command name before them may hold spaces and
// parentheses, so fields are counted from the last ")".
async function processStat(
  pid: number,
): Promise<{ state: string | undefined; startTime: string | undefined } | undefined> {
  const stat = await readTrimmed(`/proc/${pid}/stat`);
  if (stat === undefined) return undefined;
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { state: fields[0], startTime: fields[19] };
}
