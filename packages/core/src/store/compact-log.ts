import type { Envelope } from "@macp/proto";
import type { IncomingRecord, LogRecord } from "./log-record.js";

// Payload bytes are copied into shared chunks, each twice the size of the one
// before (a short session stays small) up to this size; payloads bigger than
// OWN_COPY_BYTES get their own copy.
const FIRST_CHUNK_BYTES = 256;
const MAX_CHUNK_BYTES = 64 * 1024;
const OWN_COPY_BYTES = 4 * 1024;
// Where-markers for payloads outside the chunks.
const OWN_PAYLOAD = -1;
const EMPTY_PAYLOAD = -2;

/**
 * One session's log, held so that a long history costs the garbage collector
 * little. An accepted envelope kept as the object it arrived as is about ten
 * heap objects (the message, six strings, a BigInt, a byte view, the record)
 * that every collection must trace; kept here it is a few slots in arrays
 * plus its payload bytes in a shared chunk, and only its message id stays a
 * string of its own (the session's dedup set holds that one anyway). Records
 * are rebuilt on read, which only history replays and recovery do. Records
 * that do not fit the rows (a SessionStart with its binding, runtime
 * records, envelopes with unknown fields or a timestamp beyond 2^53) are kept
 * as they came.
 */
export class CompactLog {
  /** Per record: its row, or the record itself. */
  private readonly entries: (number | LogRecord)[] = [];
  /** Created with the first row: a session that only started costs nothing more. */
  private rows: Rows | undefined;

  get length(): number {
    return this.entries.length;
  }

  append(record: LogRecord): void {
    if (record.kind === "incoming" && record.binding === undefined) {
      this.rows ??= new Rows(record.envelope);
      const row = this.rows.add(record.envelope, record.receivedAtMs);
      if (row !== undefined) {
        this.entries.push(row);
        return;
      }
    }
    this.entries.push(record);
  }

  /** The records in append order, rebuilt from the rows. */
  records(): LogRecord[] {
    const out = new Array<LogRecord>(this.entries.length);
    for (let index = 0; index < this.entries.length; index++) {
      const entry = this.entries[index] as number | LogRecord;
      out[index] = typeof entry === "number" ? (this.rows as Rows).record(entry) : entry;
    }
    return out;
  }
}

/** Plain incoming records as columns, one per envelope field. */
class Rows {
  // The fields every row shares, taken from the first envelope.
  private readonly macpVersion: string;
  private readonly mode: string;
  private readonly sessionId: string;
  private readonly messageIds: string[] = [];
  private readonly messageTypes: string[] = [];
  private readonly senders: string[] = [];
  private readonly timestamps: number[] = [];
  private readonly receivedAt: number[] = [];
  /** Where a row's payload starts: chunk index × MAX_CHUNK_BYTES + offset, or a marker below 0. */
  private readonly payloadAt: number[] = [];
  private readonly payloadLength: number[] = [];
  private readonly ownPayloads = new Map<number, Uint8Array>();
  private readonly chunks: Uint8Array[] = [];
  private chunkUsed = 0;
  /** One instance of each sender and message type seen, so rows share them. */
  private readonly strings = new Map<string, string>();

  constructor(first: Envelope) {
    this.macpVersion = first.macpVersion;
    this.mode = first.mode;
    this.sessionId = first.sessionId;
  }

  /** Adds the envelope as a row and returns its number; undefined if it does not fit one. */
  add(envelope: Envelope, receivedAtMs: number): number | undefined {
    if (envelope.$unknown !== undefined && envelope.$unknown.length > 0) return undefined;
    const timestamp = Number(envelope.timestampUnixMs);
    if (!Number.isSafeInteger(timestamp)) return undefined;
    if (
      envelope.macpVersion !== this.macpVersion ||
      envelope.mode !== this.mode ||
      envelope.sessionId !== this.sessionId
    ) {
      return undefined;
    }
    const row = this.messageIds.length;
    this.messageIds.push(envelope.messageId);
    this.messageTypes.push(this.shared(envelope.messageType));
    this.senders.push(this.shared(envelope.sender));
    this.timestamps.push(timestamp);
    this.receivedAt.push(receivedAtMs);
    this.payloadLength.push(envelope.payload.length);
    this.payloadAt.push(this.keepPayload(row, envelope.payload));
    return row;
  }

  record(row: number): IncomingRecord {
    return {
      kind: "incoming",
      envelope: {
        $typeName: "macp.v1.Envelope",
        macpVersion: this.macpVersion,
        mode: this.mode,
        messageType: this.messageTypes[row] as string,
        messageId: this.messageIds[row] as string,
        sessionId: this.sessionId,
        sender: this.senders[row] as string,
        timestampUnixMs: BigInt(this.timestamps[row] as number),
        payload: this.payloadOf(row),
      },
      receivedAtMs: this.receivedAt[row] as number,
    };
  }

  private shared(text: string): string {
    const kept = this.strings.get(text);
    if (kept !== undefined) return kept;
    this.strings.set(text, text);
    return text;
  }

  /** Copies the payload (so the request buffer it views can go) and says where it is. */
  private keepPayload(row: number, payload: Uint8Array): number {
    if (payload.length === 0) return EMPTY_PAYLOAD;
    if (payload.length > OWN_COPY_BYTES) {
      this.ownPayloads.set(row, payload.slice());
      return OWN_PAYLOAD;
    }
    let chunk = this.chunks[this.chunks.length - 1];
    if (chunk === undefined || this.chunkUsed + payload.length > chunk.length) {
      const previous = chunk?.length ?? FIRST_CHUNK_BYTES / 2;
      chunk = new Uint8Array(Math.max(payload.length, Math.min(MAX_CHUNK_BYTES, previous * 2)));
      this.chunks.push(chunk);
      this.chunkUsed = 0;
    }
    chunk.set(payload, this.chunkUsed);
    const at = (this.chunks.length - 1) * MAX_CHUNK_BYTES + this.chunkUsed;
    this.chunkUsed += payload.length;
    return at;
  }

  private payloadOf(row: number): Uint8Array {
    const at = this.payloadAt[row] as number;
    if (at === EMPTY_PAYLOAD) return new Uint8Array(0);
    // Copies: a reader may keep or change what it reads without touching the log.
    if (at === OWN_PAYLOAD) return (this.ownPayloads.get(row) as Uint8Array).slice();
    const chunk = this.chunks[Math.floor(at / MAX_CHUNK_BYTES)] as Uint8Array;
    const offset = at % MAX_CHUNK_BYTES;
    return chunk.slice(offset, offset + (this.payloadLength[row] as number));
  }
}
