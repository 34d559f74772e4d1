import { errorCode, type FileStoreFileSystem } from "./file-system.js";
import { scanFrames } from "./frame.js";
import {
  decodeHeader,
  encodeHeader,
  FileKind,
  isZeroFilled,
  logFileName,
  sessionIdFromFileName,
} from "./log-file.js";
import { type StoreContext, truncateFile } from "./store-context.js";
import { describe } from "./store-errors.js";

// What a session log file holds, checked: its records, or why it is unusable.

export type FileRead = { readonly bytes: Uint8Array } | { readonly error: unknown };

export type Inspection =
  | { readonly kind: "missing" }
  /** The file holds no complete record: a crash during its creation (version 1 stores only). */
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

export interface InspectOptions {
  /** Cut a torn tail off on disk (the records before it stay); only where tails may be unacknowledged. */
  readonly repair: boolean;
  /** Read only this prefix: the part of a log this store has written. */
  readonly limit?: number | undefined;
  /**
   * Whether every byte of the file was acknowledged (see the storage guide): then
   * an empty log or a torn tail is lost data, never a write a crash cut short.
   * Always so with `limit`.
   */
  readonly acknowledged: boolean;
}

export async function readBytes(fs: FileStoreFileSystem, path: string): Promise<FileRead> {
  try {
    const bytes = await fs.readFile(path);
    // A plain Uint8Array over the same memory: records decode from it without
    // copies, and their byte fields are not Buffers.
    return { bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) };
  } catch (error) {
    return { error };
  }
}

/** Checks one log file's bytes. */
export async function inspectLog(
  context: StoreContext,
  path: string,
  fileName: string,
  read: FileRead,
  options: InspectOptions,
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
  const acknowledged = options.limit !== undefined || options.acknowledged;
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
      context.logger.warn(`cut off the torn tail of session ${sessionId}`, {
        sessionId,
        offset: scan.end,
        bytes: torn.bytes,
        reason: torn.reason,
      });
      try {
        await truncateFile(context, path, scan.end);
        torn = undefined;
      } catch (error) {
        context.logger.warn("could not cut the torn tail yet; will retry before the next write", {
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
