import { crc32 } from "node:zlib";

// One record on disk: u32 payload length | u32 CRC32 | payload (little-endian).
// The checksum covers the length field as well as the payload, so a flipped
// length is caught even when the bytes it points at happen to be plausible.

/** Bytes of the frame prefix (length + checksum). */
export const FRAME_OVERHEAD = 8;

/**
 * Largest payload a frame may carry. Envelopes are capped at about 1 MiB by
 * the runtime; the bound exists so a corrupt length field cannot make the
 * scanner treat the rest of the file as one giant, "incomplete" record.
 */
export const MAX_FRAME_PAYLOAD = 64 * 1024 * 1024;

// CRC-32 (the zlib one) of the 4 little-endian bytes of a length, in JS: a call
// into zlib costs more than these four table lookups.
const CRC_TABLE = new Int32Array(256);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  CRC_TABLE[n] = c;
}

function lengthChecksum(length: number): number {
  let c = -1;
  for (let shift = 0; shift < 32; shift += 8) {
    c = (CRC_TABLE[(c ^ (length >>> shift)) & 0xff] as number) ^ (c >>> 8);
  }
  return (c ^ -1) >>> 0;
}

/**
 * Frames `payload` into `target` at `at` (which must have room for
 * {@link FRAME_OVERHEAD} + its length); returns the offset after it.
 */
export function writeFrame(target: Uint8Array, at: number, payload: Uint8Array): number {
  if (payload.length === 0 || payload.length > MAX_FRAME_PAYLOAD) {
    throw new RangeError(`record of ${payload.length} bytes cannot be framed`);
  }
  const length = payload.length;
  const checksum = crc32(payload, lengthChecksum(length));
  target[at] = length;
  target[at + 1] = length >>> 8;
  target[at + 2] = length >>> 16;
  target[at + 3] = length >>> 24;
  target[at + 4] = checksum;
  target[at + 5] = checksum >>> 8;
  target[at + 6] = checksum >>> 16;
  target[at + 7] = checksum >>> 24;
  target.set(payload, at + FRAME_OVERHEAD);
  return at + FRAME_OVERHEAD + length;
}

/** Frames one payload. */
export function encodeFrame(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(FRAME_OVERHEAD + payload.length);
  writeFrame(out, 0, payload);
  return out;
}

/** A frame found by {@link scanFrames}: its payload and where its frame starts. */
export interface ScannedFrame {
  readonly offset: number;
  readonly payload: Uint8Array;
}

/**
 * The outcome of scanning a log body:
 * - `clean`: every byte belongs to a valid frame;
 * - `torn`: the bytes from `end` on are an unfinished write (nothing valid follows);
 *   the caller cuts them off;
 * - `corrupt`: a bad frame at `end` is followed by valid frames, so the damage is
 *   inside acknowledged history and nothing may be cut.
 */
export interface ScanResult {
  readonly frames: ScannedFrame[];
  /** Offset just after the last valid frame of the unbroken prefix. */
  readonly end: number;
  readonly status: "clean" | "torn" | "corrupt";
  /** Why the frame at `end` is invalid (torn and corrupt only). */
  readonly reason?: string;
}

type FrameCheck =
  | { readonly ok: true; readonly next: number; readonly payload: Uint8Array }
  | { readonly ok: false; readonly reason: string };

function checkFrame(bytes: Uint8Array, view: DataView, at: number): FrameCheck {
  if (bytes.length - at < FRAME_OVERHEAD) {
    return { ok: false, reason: `incomplete frame header (${bytes.length - at} bytes)` };
  }
  const length = view.getUint32(at, true);
  // A zero length is never written (records are at least a few bytes); it is
  // what a crash leaves when the file system exposes a zero-filled tail.
  if (length === 0 || length > MAX_FRAME_PAYLOAD) {
    return { ok: false, reason: `invalid frame length ${length}` };
  }
  const next = at + FRAME_OVERHEAD + length;
  if (next > bytes.length) {
    return {
      ok: false,
      reason: `incomplete frame: ${length} bytes declared, ${bytes.length - at - FRAME_OVERHEAD} present`,
    };
  }
  const payload = bytes.subarray(at + FRAME_OVERHEAD, next);
  if (view.getUint32(at + 4, true) !== crc32(payload, lengthChecksum(length))) {
    return { ok: false, reason: "checksum mismatch" };
  }
  return { ok: true, next, payload };
}

/**
 * Reads the frames of `bytes` starting at `start`. On the first invalid frame
 * it looks for any valid frame further on: if there is one, the log is
 * corrupt in the middle; if not, the rest is a torn tail.
 */
export function scanFrames(bytes: Uint8Array, start: number): ScanResult {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const frames: ScannedFrame[] = [];
  let at = start;
  while (at < bytes.length) {
    const frame = checkFrame(bytes, view, at);
    if (!frame.ok) {
      const status = hasValidFrameAfter(bytes, view, at + 1) ? "corrupt" : "torn";
      return { frames, end: at, status, reason: frame.reason };
    }
    frames.push({ offset: at, payload: frame.payload });
    at = frame.next;
  }
  return { frames, end: at, status: "clean" };
}

// Resynchronisation: try every later offset as a frame start. A torn tail is at
// most one unfinished batch, so this is short where it matters; after damage in
// the middle the next genuine frame is found within one record's length.
function hasValidFrameAfter(bytes: Uint8Array, view: DataView, from: number): boolean {
  for (let at = from; at + FRAME_OVERHEAD < bytes.length; at++) {
    if (checkFrame(bytes, view, at).ok) return true;
  }
  return false;
}
