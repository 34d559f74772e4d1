import { join } from "node:path";
import { decodeLogRecord, type LogRecord } from "@macp/core";
import { FileStoreError } from "./file-store-error.js";
import type { FileStoreHandle } from "./file-system.js";
import { FRAME_OVERHEAD, scanFrames, writeFrame } from "./frame.js";
import { sessionIdBytes } from "./journal-format.js";
import { decodeHeader, encodeHeader, FileKind, logFileName } from "./log-file.js";

// One session's log as the file store tracks it, and the pure helpers around it:
// the frames waiting for a checkpoint, the check that a log can be continued
// where the journal says, and decoding.

/** What the store knows about one session's log file. */
export interface SessionLog {
  readonly sessionId: string;
  readonly idBytes: Uint8Array;
  readonly fileName: string;
  readonly path: string;
  /** Bytes of the file header, where the first record's frame starts. */
  readonly headerLength: number;
  /**
   * unknown: not looked at yet; absent: no file; present: valid up to `end`;
   * stale: a file holding nothing acknowledged (a creation that was refused, or a log
   * the journal rewrites whole), overwritten from byte 0 by the next write;
   * quarantined: damaged, never written again by this store.
   */
  state: "unknown" | "absent" | "present" | "stale" | "quarantined";
  /** present: offset just past the last record the file holds. */
  end: number;
  /** Bytes past `end` may be on disk (a failed write): truncate before writing again. */
  repairPending: boolean;
  reason: string;
  handle: FileStoreHandle | undefined;
  /** Being written by a checkpoint: its handle must not be closed. */
  busy: boolean;
  /**
   * The frames of records not in the file yet, as the file will hold them, from
   * the file's end (`end`, or `headerLength` for a log still to be created) on:
   * `framesCommitted` bytes of records durable in the journal, then up to
   * `framesUsed` bytes of records in batches in flight. One buffer per log, not
   * one object per record, so that thousands of records waiting for a checkpoint
   * cost the garbage collector nothing.
   */
  frames: Uint8Array;
  framesUsed: number;
  framesCommitted: number;
  /** Records in the first `framesCommitted` bytes. */
  pendingRecords: number;
  /** Appends waiting for the log to be looked at, in call order. */
  gate: Promise<void> | undefined;
  /** Appends handed to the group commit and not settled yet. */
  appending: number;
  /** The runtime evicted the session: forget the log once nothing of it is in flight. */
  evicted: boolean;
}

const EMPTY = new Uint8Array(0);

export function newSessionLog(sessionId: string, logsDirectory: string): SessionLog {
  const fileName = logFileName(sessionId);
  return {
    sessionId,
    idBytes: sessionIdBytes(sessionId),
    fileName,
    path: join(logsDirectory, fileName),
    headerLength: encodeHeader(FileKind.session, sessionId).length,
    state: "unknown",
    end: 0,
    repairPending: false,
    reason: "",
    handle: undefined,
    busy: false,
    frames: EMPTY,
    framesUsed: 0,
    framesCommitted: 0,
    pendingRecords: 0,
    gate: undefined,
    appending: 0,
    evicted: false,
  };
}

/**
 * Whether the store can forget the log and find it again on disk: no append is
 * queued, waiting or in flight, every record is in the file (none only in the
 * journal), no checkpoint is writing it, and it is not quarantined (that verdict
 * and its reason are kept).
 */
export function isSettledOnDisk(log: SessionLog): boolean {
  return (
    log.appending === 0 &&
    log.gate === undefined &&
    log.framesUsed === 0 &&
    !log.busy &&
    log.state !== "quarantined"
  );
}

/** Forgets the frames waiting for a checkpoint: written to the log, or no longer wanted. */
export function clearFrames(log: SessionLog): void {
  log.frames = EMPTY;
  log.framesUsed = 0;
  log.framesCommitted = 0;
  log.pendingRecords = 0;
}

/**
 * Why a log cannot be continued at `offset`, where the journal's first record of
 * its session goes: everything before it was checkpointed, so it must be intact.
 */
export function prefixProblem(
  bytes: Uint8Array | undefined,
  sessionId: string,
  offset: number,
): string | undefined {
  if (bytes === undefined) {
    return `the log is missing, but the journal continues it at byte ${offset}`;
  }
  const header = decodeHeader(bytes);
  if (header.status !== "ok") {
    return `damaged file header (${header.status === "bad" ? header.reason : "truncated"})`;
  }
  if (header.kind !== FileKind.session || header.owner !== sessionId) {
    return `file header names session ${JSON.stringify(header.owner)}`;
  }
  if (offset < header.length) return `the journal places a record inside the file header`;
  if (bytes.length < offset) {
    return `the log ends at byte ${bytes.length}, but the journal continues it at byte ${offset}: acknowledged records are missing`;
  }
  const scan = scanFrames(bytes.subarray(0, offset), header.length);
  if (scan.status !== "clean") {
    return `damaged record at byte ${scan.end} (${scan.reason}) before the records the journal holds`;
  }
  return undefined;
}

/** Where the next frame of the log goes: its file's end, or after the header of a file to create. */
export function logBase(log: SessionLog): number {
  return log.state === "present" ? log.end : log.headerLength;
}

export function appendFrame(log: SessionLog, payload: Uint8Array): void {
  const needed = log.framesUsed + FRAME_OVERHEAD + payload.length;
  if (needed > log.frames.length) {
    const grown = new Uint8Array(Math.max(needed, 2 * log.frames.length, 256));
    grown.set(log.frames.subarray(0, log.framesUsed));
    log.frames = grown;
  }
  log.framesUsed = writeFrame(log.frames, log.framesUsed, payload);
}

/**
 * The records only the journal holds, as views of the log's frame buffer: later
 * appends write past them, and a checkpoint replaces the buffer rather than
 * changing it, so the views stay valid.
 */
export function pendingPayloads(log: SessionLog): Uint8Array[] {
  if (log.framesCommitted === 0) return [];
  return scanFrames(log.frames.subarray(0, log.framesCommitted), 0).frames.map((f) => f.payload);
}

export function framesOf(payloads: readonly Uint8Array[]): Uint8Array {
  let size = 0;
  for (const payload of payloads) size += FRAME_OVERHEAD + payload.length;
  const out = new Uint8Array(size);
  let at = 0;
  for (const payload of payloads) at = writeFrame(out, at, payload);
  return out;
}

// Decoded byte fields are views of their input, here the buffer of one session's
// log (read whole, never shared with another file) or of its frames awaiting a
// checkpoint. So a record kept after replay keeps at most its own session's log in
// memory; copying every record instead cost a tenth of the recovery time.
export function decodeAll(payloads: readonly Uint8Array[]): LogRecord[] | string {
  const records: LogRecord[] = [];
  for (let index = 0; index < payloads.length; index++) {
    const decoded = decodeLogRecord(payloads[index] as Uint8Array);
    if (decoded.isErr()) return `record ${index + 1} does not decode: ${decoded.error}`;
    records.push(decoded.value);
  }
  return records;
}

export function decodeOrThrow(sessionId: string, payloads: readonly Uint8Array[]): LogRecord[] {
  const decoded = decodeAll(payloads);
  if (typeof decoded === "string") {
    throw new FileStoreError(
      "SESSION_QUARANTINED",
      `log of session ${sessionId} is damaged: ${decoded}`,
      { sessionId },
    );
  }
  return decoded;
}
