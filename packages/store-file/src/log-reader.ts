import { join } from "node:path";
import type { LogRecord, StoredSession } from "@macp/core";
import { FileStoreError } from "./file-store-error.js";
import { isLogFileName, logFileName } from "./log-file.js";
import { type FileRead, type InspectOptions, inspectLog, readBytes } from "./log-inspection.js";
import { decodeAll, decodeOrThrow, pendingPayloads, type SessionLog } from "./session-log.js";
import { type SessionRegistry, setKnown } from "./session-registry.js";
import { removeFile, type StoreContext, syncDirectoryQuietly } from "./store-context.js";
import type { StoreDirectory } from "./store-directory.js";
import { quarantinedError } from "./store-errors.js";
import type { Tombstones } from "./tombstones.js";

/** Log files read ahead by loadAll. */
const READ_AHEAD = 32;

/**
 * Reads session logs back: one session's records, every session for recovery,
 * and what is on disk for a session the store has not looked at yet. Each reads
 * a log the store knows up to where it wrote it, plus the records only the
 * journal holds.
 */
export class LogReader {
  /**
   * Whether every byte of a log the journal does not cover was acknowledged; not
   * in a version 1 store, which wrote logs directly (set once the directory is checked).
   */
  logsAreAcknowledged = true;

  constructor(
    private readonly context: StoreContext,
    private readonly directory: StoreDirectory,
    private readonly registry: SessionRegistry,
    private readonly tombstones: Tombstones,
  ) {}

  async read(sessionId: string): Promise<readonly LogRecord[] | undefined> {
    if (this.tombstones.has(sessionId)) return undefined;
    const log = this.registry.get(sessionId);
    if (log?.state === "quarantined") throw quarantinedError(log);
    // Taken together, before reading: a checkpoint may move records from the
    // journal into the file meanwhile, and the file is read only up to `end`.
    const pending = log ? pendingPayloads(log) : [];
    if (log?.state === "absent" || log?.state === "stale") {
      return pending.length > 0 ? decodeOrThrow(sessionId, pending) : undefined;
    }
    const fileName = log?.fileName ?? logFileName(sessionId);
    const path = log?.path ?? join(this.context.logsDirectory, fileName);
    const found = await this.inspect(path, fileName, await readBytes(this.context.fs, path), {
      repair: false,
      limit: log?.state === "present" ? log.end : undefined,
    });
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

  /** Every session, as {@link FileStore.loadAll} describes; call with no append in flight. */
  async *sessions(): AsyncGenerator<StoredSession> {
    const { context, registry, tombstones } = this;
    const logsDirectory = context.logsDirectory;
    const names = (await this.directory.list(logsDirectory)).sort();
    // Logs this store already knows are read up to where it wrote them, plus the
    // records only the journal holds; anything after `end` is a failed write.
    const known = new Map<string, SessionLog>();
    for (const log of registry.values()) {
      if (log.state !== "unknown") known.set(log.fileName, log);
    }
    const files: string[] = [];
    for (const name of names) {
      if (isLogFileName(name)) files.push(name);
      else context.logger.warn(`ignoring unexpected file ${name} in ${logsDirectory}`);
    }
    // Reading ahead keeps the disk busy while records are decoded.
    const reads: (Promise<FileRead> | undefined)[] = [];
    const readAhead = (index: number): void => {
      const until = Math.min(files.length, index + READ_AHEAD);
      while (reads.length < until) {
        reads.push(readBytes(context.fs, join(logsDirectory, files[reads.length] as string)));
      }
    };
    let removed = false;
    for (let index = 0; index < files.length; index++) {
      readAhead(index);
      const name = files[index] as string;
      const path = join(logsDirectory, name);
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
            yield storedFrom(log, [], pending);
            continue;
          }
          const gone = await removeFile(context, path, "a log with no complete record");
          removed ||= gone;
          log.state = gone ? "absent" : "stale";
          continue;
        }
        // Read ahead before a checkpoint moved records from memory into the file.
        if ("bytes" in read && read.bytes.length < end) read = await readBytes(context.fs, path);
        const found = await this.inspect(path, name, read, { repair: false, limit: end });
        const stored = this.storedFromInspection(log, found, pending);
        if (stored) yield stored;
        continue;
      }
      const found = await this.inspect(path, name, read, { repair: true });
      if (found.kind !== "missing" && found.sessionId && tombstones.has(found.sessionId)) {
        // A delete recorded its tombstone but crashed before removing the log.
        removed ||= await removeFile(
          context,
          path,
          `the log of deleted session ${found.sessionId}`,
        );
        continue;
      }
      switch (found.kind) {
        case "missing":
          continue;
        case "empty": {
          // A version 1 store wrote a new log with its first record: nothing in
          // it was ever acknowledged, so the id was never taken.
          const gone = await removeFile(
            context,
            path,
            "a log with no complete record (crash during creation)",
          );
          removed ||= gone;
          if (found.sessionId !== undefined) {
            const emptyLog = registry.log(found.sessionId);
            if (emptyLog.state === "unknown") setKnown(emptyLog, gone ? "absent" : "stale", 0);
          }
          continue;
        }
        case "corrupt": {
          const corruptLog = registry.log(found.sessionId);
          if (corruptLog.state !== "quarantined") registry.quarantine(corruptLog, found.reason);
          yield { sessionId: found.sessionId, error: found.reason };
          continue;
        }
        case "ok": {
          const okLog = registry.log(found.sessionId);
          const decoded = decodeAll(found.payloads);
          if (typeof decoded === "string") {
            registry.quarantine(okLog, decoded);
            yield { sessionId: found.sessionId, error: decoded };
            continue;
          }
          if (okLog.state === "unknown") {
            setKnown(okLog, "present", found.end);
            okLog.repairPending = found.torn !== undefined;
          }
          yield { sessionId: found.sessionId, records: decoded };
        }
      }
    }
    if (removed) await syncDirectoryQuietly(context, logsDirectory);
    // Sessions created since the last checkpoint exist only in the journal.
    for (const log of known.values()) {
      if (log.pendingRecords > 0 && !tombstones.has(log.sessionId)) {
        yield storedFrom(log, [], pendingPayloads(log));
      }
    }
    // A deleted session comes back as a log with no records: the runtime then
    // rebuilds nothing for it but keeps its id reserved (IDEM-8).
    for (const sessionId of tombstones.ids()) yield { sessionId, records: [] };
  }

  /** Finds out what is on disk for a session the store has not looked at yet. */
  async resolveState(log: SessionLog): Promise<void> {
    if (log.state === "quarantined") throw quarantinedError(log);
    if (log.state !== "unknown") return;
    const read = await readBytes(this.context.fs, log.path);
    const found = await this.inspect(log.path, log.fileName, read, { repair: true });
    // loadAll may have looked at it meanwhile; what it found is the same file.
    if (log.state !== "unknown") return;
    switch (found.kind) {
      case "missing":
        setKnown(log, "absent", 0);
        return;
      case "empty": {
        const gone = await removeFile(this.context, log.path, "a log with no complete record");
        setKnown(log, gone ? "absent" : "stale", 0);
        return;
      }
      case "corrupt":
        this.registry.quarantine(log, found.reason);
        throw quarantinedError(log);
      case "ok":
        if (found.sessionId !== log.sessionId) {
          this.registry.quarantine(log, `file belongs to session ${found.sessionId}`);
          throw quarantinedError(log);
        }
        setKnown(log, "present", found.end);
        log.repairPending = found.torn !== undefined;
        return;
    }
  }

  private inspect(
    path: string,
    fileName: string,
    read: FileRead,
    options: Omit<InspectOptions, "acknowledged">,
  ): ReturnType<typeof inspectLog> {
    return inspectLog(this.context, path, fileName, read, {
      ...options,
      acknowledged: this.logsAreAcknowledged,
    });
  }

  private storedFromInspection(
    log: SessionLog,
    found: Awaited<ReturnType<typeof inspectLog>>,
    pending: readonly Uint8Array[],
  ): StoredSession | undefined {
    switch (found.kind) {
      case "missing":
      case "empty":
        return pending.length > 0 ? storedFrom(log, [], pending) : undefined;
      case "corrupt":
        this.registry.quarantine(log, found.reason);
        return { sessionId: log.sessionId, error: found.reason };
      case "ok": {
        const decoded = decodeAll(found.payloads);
        if (typeof decoded === "string") {
          this.registry.quarantine(log, decoded);
          return { sessionId: log.sessionId, error: decoded };
        }
        return storedFrom(log, decoded, pending);
      }
    }
  }
}

function storedFrom(
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
