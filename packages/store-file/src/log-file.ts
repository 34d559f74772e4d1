import { createHash } from "node:crypto";
import { crc32 } from "node:zlib";

// Every file the store writes starts with this header (little-endian):
//   8  magic "MACPSLOG"
//   1  format version (1)
//   1  file kind (1 = session log, 2 = tombstone list, 3 = journal)
//   2  reserved, zero
//   4  owner length n (UTF-8 bytes; the session id for a session log, 0 otherwise)
//   n  owner
//   4  CRC32 of all the bytes above
// Keeping the session id inside the file means the file name is only a
// locator: recovery takes the id from the header and checks the name agrees.

export const FORMAT_VERSION = 1;
export const FileKind = { session: 1, tombstones: 2, journal: 3 } as const;
export type FileKind = (typeof FileKind)[keyof typeof FileKind];

const MAGIC = new TextEncoder().encode("MACPSLOG");
const FIXED_HEADER = 20;
/** Session ids beyond this are refused: the header is read before anything can be trusted. */
export const MAX_SESSION_ID_BYTES = 4096;

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder("utf-8", { fatal: true });

export function encodeHeader(kind: FileKind, owner: string): Uint8Array {
  const id = utf8.encode(owner);
  const out = new Uint8Array(FIXED_HEADER + id.length);
  const view = new DataView(out.buffer);
  out.set(MAGIC, 0);
  out[8] = FORMAT_VERSION;
  out[9] = kind;
  view.setUint32(12, id.length, true);
  out.set(id, 16);
  view.setUint32(16 + id.length, crc32(out.subarray(0, 16 + id.length)), true);
  return out;
}

export type HeaderCheck =
  | {
      readonly status: "ok";
      readonly kind: number;
      readonly owner: string;
      readonly length: number;
    }
  /** The file is shorter than a header and holds what a creation cut short would leave. */
  | { readonly status: "incomplete" }
  | { readonly status: "bad"; readonly reason: string };

export function decodeHeader(bytes: Uint8Array): HeaderCheck {
  if (isZeroFilled(bytes)) return { status: "incomplete" };
  const magicBytes = Math.min(bytes.length, MAGIC.length);
  for (let i = 0; i < magicBytes; i++) {
    if (bytes[i] !== MAGIC[i]) return { status: "bad", reason: "not a macp-ts log (bad magic)" };
  }
  if (bytes.length < FIXED_HEADER) return { status: "incomplete" };
  if (bytes[8] !== FORMAT_VERSION) {
    return { status: "bad", reason: `unsupported log format version ${bytes[8]}` };
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const ownerLength = view.getUint32(12, true);
  if (ownerLength > MAX_SESSION_ID_BYTES) {
    return { status: "bad", reason: `header declares a ${ownerLength}-byte session id` };
  }
  const length = FIXED_HEADER + ownerLength;
  if (bytes.length < length) return { status: "incomplete" };
  if (view.getUint32(16 + ownerLength, true) !== crc32(bytes.subarray(0, 16 + ownerLength))) {
    return { status: "bad", reason: "header checksum mismatch" };
  }
  try {
    const owner = fromUtf8.decode(bytes.subarray(16, 16 + ownerLength));
    return { status: "ok", kind: bytes[9] ?? 0, owner, length };
  } catch {
    return { status: "bad", reason: "session id in header is not UTF-8" };
  }
}

/** True for an empty file too: neither holds anything a writer finished. */
export function isZeroFilled(bytes: Uint8Array): boolean {
  for (const byte of bytes) if (byte !== 0) return false;
  return true;
}

// File names: lowercase hex of the UTF-8 id, which is safe on every file
// system (no separators, no dots, no case folding collisions). Ids too long for
// a file name (NAME_MAX is 255 bytes) are named by their SHA-256 instead; the
// header still carries the full id.
const LOG_SUFFIX = ".log";
const MAX_HEX_NAME = 200;
const HEX_NAME = /^((?:[0-9a-f]{2})+)\.log$/;
const HASHED_NAME = /^h-[0-9a-f]{64}\.log$/;

export function logFileName(sessionId: string): string {
  const hex = Buffer.from(sessionId, "utf8").toString("hex");
  if (hex.length > 0 && hex.length <= MAX_HEX_NAME) return `${hex}${LOG_SUFFIX}`;
  return `h-${createHash("sha256").update(sessionId, "utf8").digest("hex")}${LOG_SUFFIX}`;
}

/** Whether `name` looks like a session log file; its id comes from the header. */
export function isLogFileName(name: string): boolean {
  const hex = HEX_NAME.exec(name);
  if (hex) return (hex[1]?.length ?? 0) <= MAX_HEX_NAME;
  return HASHED_NAME.test(name);
}

/** The id a hex file name spells, or `undefined` for hashed names. */
export function sessionIdFromFileName(name: string): string | undefined {
  const hex = HEX_NAME.exec(name)?.[1];
  if (hex === undefined || hex.length > MAX_HEX_NAME) return undefined;
  try {
    return fromUtf8.decode(Buffer.from(hex, "hex"));
  } catch {
    return undefined;
  }
}
