import { crc32 } from "node:zlib";
import { decodeHeader, encodeHeader, FileKind } from "./log-file.js";

// The write-ahead journal, `journal.log` in the data directory (little-endian):
//
//   file header (log-file.ts), kind 3, no owner                           20 bytes
//   two generation slots, 16 bytes each: u32 salt | f64 base | u32 CRC32    32 bytes
//   batch frames, from byte 52 on
//
// The current generation is the valid slot with the higher `base`: `base` is the
// sequence number of its first batch and `salt` seeds every batch checksum. A
// checkpoint starts a new generation by writing the slot not in use, so a torn slot
// write leaves the previous generation readable, and the batches of older generations
// still in the file fail their checksum instead of passing for live ones.
//
// A batch frame is one group commit:
//
//   u32 magic "MJB1" | u32 payload length L | u32 CRC32 (seeded with the salt) of the
//   length field and the payload | payload:
//     f64 seq | f64 acked | u32 count | count × record
//   record: u32 id length | session id UTF-8 | f64 offset | u32 length n | n bytes
//
// `seq` numbers batches consecutively within a generation. `acked` is the highest seq
// acknowledged when the batch was formed (-1 for none). A valid batch after a damaged
// one whose `acked` covers it proves the damaged one was acknowledged: that is
// corruption, not a torn tail. (The store writes one batch at a time, so any later
// batch covers the ones before it; the field keeps the rule explicit, and correct
// for a writer that overlaps batches.) `offset` is where the record's frame starts in
// its session's log, which makes replay idempotent: the journal says exactly which
// bytes belong where.

export const JOURNAL_SLOTS_AT = 20;
const SLOT_BYTES = 16;
/** Where the first batch frame of a generation starts. */
export const JOURNAL_BODY = JOURNAL_SLOTS_AT + 2 * SLOT_BYTES;
const BATCH_MAGIC = Uint8Array.of(0x4d, 0x4a, 0x42, 0x31); // "MJB1"
const BATCH_PREFIX = 12;
const BATCH_FIXED = 20;
/** A batch larger than this is refused by the scanner (a damaged length field). */
export const MAX_BATCH_PAYLOAD = 1024 * 1024 * 1024;

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder("utf-8", { fatal: true });

/** One record as the store hands it to a batch. */
export interface JournalEntry {
  /** The session id, UTF-8. */
  readonly idBytes: Uint8Array;
  /** Where the record's frame starts in the session's log. */
  readonly offset: number;
  /** The encoded log record (the session log frames it). */
  readonly payload: Uint8Array;
}

/** The generation a journal is in. */
export interface JournalGeneration {
  readonly salt: number;
  readonly base: number;
  /** Which slot holds it (0 or 1); the next generation goes to the other. */
  readonly slot: number;
}

/** The first bytes of a new journal: the header and generation 0 (or `base`) in slot 0. */
export function encodeJournalStart(salt: number, base: number): Uint8Array {
  const out = new Uint8Array(JOURNAL_BODY);
  out.set(encodeHeader(FileKind.journal, ""), 0);
  out.set(encodeSlot(salt, base), JOURNAL_SLOTS_AT);
  return out;
}

/** A generation slot, to be written at {@link slotOffset}. */
export function encodeSlot(salt: number, base: number): Uint8Array {
  const out = new Uint8Array(SLOT_BYTES);
  const view = new DataView(out.buffer);
  view.setUint32(0, salt >>> 0, true);
  view.setFloat64(4, base, true);
  view.setUint32(12, crc32(out.subarray(0, 12)), true);
  return out;
}

export function slotOffset(slot: number): number {
  return JOURNAL_SLOTS_AT + SLOT_BYTES * slot;
}

/** Bytes one record takes in a batch. */
export function journalEntrySize(entry: JournalEntry): number {
  return 4 + entry.idBytes.length + 8 + 4 + entry.payload.length;
}

/** Bytes of a batch frame whose records take `entryBytes` (the sum of {@link journalEntrySize}). */
export function batchFrameSize(entryBytes: number): number {
  return BATCH_PREFIX + BATCH_FIXED + entryBytes;
}

/**
 * Frames one batch, the bytes written at the journal's end in one write: into
 * `target` if it is large enough (the store reuses its buffers), else into a new one.
 */
export function encodeBatch(
  generation: JournalGeneration,
  seq: number,
  acked: number,
  entries: readonly JournalEntry[],
  payloadBytes: number,
  target?: Buffer,
): Buffer {
  const length = BATCH_FIXED + payloadBytes;
  const size = BATCH_PREFIX + length;
  const out = target && target.length >= size ? target.subarray(0, size) : Buffer.allocUnsafe(size);
  out.set(BATCH_MAGIC, 0);
  out.writeUInt32LE(length, 4);
  out.writeDoubleLE(seq, BATCH_PREFIX);
  out.writeDoubleLE(acked, BATCH_PREFIX + 8);
  out.writeUInt32LE(entries.length, BATCH_PREFIX + 16);
  let at = BATCH_PREFIX + BATCH_FIXED;
  for (const entry of entries) {
    out.writeUInt32LE(entry.idBytes.length, at);
    out.set(entry.idBytes, at + 4);
    at += 4 + entry.idBytes.length;
    out.writeDoubleLE(entry.offset, at);
    out.writeUInt32LE(entry.payload.length, at + 8);
    out.set(entry.payload, at + 12);
    at += 12 + entry.payload.length;
  }
  if (at !== out.length) throw new Error(`batch encoding wrote ${at} of ${out.length} bytes`);
  out.writeUInt32LE(batchChecksum(generation.salt, out, length), 8);
  return out;
}

function batchChecksum(salt: number, frame: Uint8Array, length: number): number {
  return crc32(
    frame.subarray(BATCH_PREFIX, BATCH_PREFIX + length),
    crc32(frame.subarray(4, 8), salt),
  );
}

/** A record found in the journal. */
export interface JournalRecord {
  readonly sessionId: string;
  readonly offset: number;
  readonly payload: Uint8Array;
}

export type JournalScan =
  /** Not a journal, or neither generation slot is readable. */
  | { readonly status: "bad"; readonly reason: string }
  /** Damage inside acknowledged batches: records may be lost. */
  | { readonly status: "corrupt"; readonly offset: number; readonly reason: string }
  | {
      readonly status: "ok";
      readonly generation: JournalGeneration;
      /** The live batches' records, in commit order. */
      readonly records: JournalRecord[];
      readonly batches: number;
      /** Offset just past the last live batch: where the next one goes. */
      readonly end: number;
      /** The sequence number the next batch takes. */
      readonly nextSeq: number;
    };

/**
 * Reads a journal: the batches of its current generation, consecutively numbered
 * from its base. The first batch that is missing, damaged or from another
 * generation ends the journal, unless a later batch shows it was acknowledged.
 */
export function scanJournal(bytes: Uint8Array): JournalScan {
  const header = decodeHeader(bytes);
  if (header.status !== "ok") {
    return { status: "bad", reason: header.status === "bad" ? header.reason : "truncated header" };
  }
  if (header.kind !== FileKind.journal) return { status: "bad", reason: "not a journal" };
  if (bytes.length < JOURNAL_BODY) return { status: "bad", reason: "truncated generation slots" };
  const generation = currentGeneration(bytes);
  if (!generation) return { status: "bad", reason: "both generation slots are damaged" };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const records: JournalRecord[] = [];
  let at = JOURNAL_BODY;
  let expected = generation.base;
  for (;;) {
    const batch = checkBatch(bytes, view, at, generation.salt);
    if (!batch || batch.seq !== expected) break;
    const decoded = decodeBatch(bytes, view, batch.payloadAt, batch.next);
    if (typeof decoded === "string") {
      return { status: "corrupt", offset: at, reason: `batch ${expected}: ${decoded}` };
    }
    records.push(...decoded);
    expected++;
    at = batch.next;
  }
  const acknowledged = findAcknowledgedAfter(bytes, view, at, generation.salt, expected);
  if (acknowledged !== undefined) {
    return {
      status: "corrupt",
      offset: at,
      reason: `batch ${expected} at byte ${at} is missing or damaged, but the batch at byte ${acknowledged} shows it was acknowledged`,
    };
  }
  return {
    status: "ok",
    generation,
    records,
    batches: expected - generation.base,
    end: at,
    nextSeq: expected,
  };
}

function currentGeneration(bytes: Uint8Array): JournalGeneration | undefined {
  let best: JournalGeneration | undefined;
  for (const slot of [0, 1]) {
    const at = slotOffset(slot);
    const view = new DataView(bytes.buffer, bytes.byteOffset + at, SLOT_BYTES);
    if (view.getUint32(12, true) !== crc32(bytes.subarray(at, at + 12))) continue;
    const base = view.getFloat64(4, true);
    if (!Number.isSafeInteger(base) || base < 0) continue;
    if (!best || base > best.base) best = { salt: view.getUint32(0, true), base, slot };
  }
  return best;
}

interface CheckedBatch {
  readonly seq: number;
  readonly acked: number;
  readonly payloadAt: number;
  readonly next: number;
}

function checkBatch(
  bytes: Uint8Array,
  view: DataView,
  at: number,
  salt: number,
): CheckedBatch | undefined {
  if (bytes.length - at < BATCH_PREFIX + BATCH_FIXED) return undefined;
  for (let i = 0; i < 4; i++) if (bytes[at + i] !== BATCH_MAGIC[i]) return undefined;
  const length = view.getUint32(at + 4, true);
  if (length < BATCH_FIXED || length > MAX_BATCH_PAYLOAD) return undefined;
  const next = at + BATCH_PREFIX + length;
  if (next > bytes.length) return undefined;
  const expected = crc32(
    bytes.subarray(at + BATCH_PREFIX, next),
    crc32(bytes.subarray(at + 4, at + 8), salt),
  );
  if (view.getUint32(at + 8, true) !== expected) return undefined;
  return {
    seq: view.getFloat64(at + BATCH_PREFIX, true),
    acked: view.getFloat64(at + BATCH_PREFIX + 8, true),
    payloadAt: at + BATCH_PREFIX,
    next,
  };
}

// Only batches of this generation pass the checksum, so stale bytes of earlier
// generations (and zeros) are skipped; the magic makes the search a byte scan.
function findAcknowledgedAfter(
  bytes: Uint8Array,
  view: DataView,
  from: number,
  salt: number,
  seq: number,
): number | undefined {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (
    let at = buffer.indexOf(BATCH_MAGIC, from);
    at !== -1;
    at = buffer.indexOf(BATCH_MAGIC, at + 1)
  ) {
    const batch = checkBatch(bytes, view, at, salt);
    if (batch && batch.acked >= seq) return at;
  }
  return undefined;
}

function decodeBatch(
  bytes: Uint8Array,
  view: DataView,
  payloadAt: number,
  end: number,
): JournalRecord[] | string {
  const count = view.getUint32(payloadAt + 16, true);
  const records: JournalRecord[] = [];
  let at = payloadAt + BATCH_FIXED;
  for (let i = 0; i < count; i++) {
    if (at + 4 > end) return `record ${i + 1} is truncated`;
    const idLength = view.getUint32(at, true);
    if (at + 4 + idLength + 12 > end) return `record ${i + 1} is truncated`;
    let sessionId: string;
    try {
      sessionId = fromUtf8.decode(bytes.subarray(at + 4, at + 4 + idLength));
    } catch {
      return `record ${i + 1} has a session id that is not UTF-8`;
    }
    at += 4 + idLength;
    const offset = view.getFloat64(at, true);
    const length = view.getUint32(at + 8, true);
    at += 12;
    if (at + length > end || length === 0) return `record ${i + 1} has a bad length`;
    if (!Number.isSafeInteger(offset) || offset < 0) return `record ${i + 1} has a bad offset`;
    records.push({ sessionId, offset, payload: bytes.subarray(at, at + length) });
    at += length;
  }
  return at === end ? records : `${end - at} bytes after the last record`;
}

/** The UTF-8 bytes of a session id, as batches carry it. */
export function sessionIdBytes(sessionId: string): Uint8Array {
  return utf8.encode(sessionId);
}
