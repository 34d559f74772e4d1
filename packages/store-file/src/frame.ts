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

function frameChecksum(lengthField: Uint8Array, payload: Uint8Array): number {
  return crc32(payload, crc32(lengthField));
}

/** Frames one payload. */
export function encodeFrame(payload: Uint8Array): Uint8Array {
  if (payload.length === 0 || payload.length > MAX_FRAME_PAYLOAD) {
    throw new RangeError(`record of ${payload.length} bytes cannot be framed`);
  }
  const out = new Uint8Array(FRAME_OVERHEAD + payload.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, payload.length, true);
  view.setUint32(4, frameChecksum(out.subarray(0, 4), payload), true);
  out.set(payload, FRAME_OVERHEAD);
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
  if (view.getUint32(at + 4, true) !== frameChecksum(bytes.subarray(at, at + 4), payload)) {
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
