import { describe, expect, it } from "vitest";
import {
  encodeBatch,
  encodeJournalStart,
  encodeSlot,
  JOURNAL_BODY,
  type JournalEntry,
  type JournalGeneration,
  journalEntrySize,
  scanJournal,
  sessionIdBytes,
  slotOffset,
} from "./journal-format.js";

function entry(sessionId: string, offset: number, text: string): JournalEntry {
  return { idBytes: sessionIdBytes(sessionId), offset, payload: new TextEncoder().encode(text) };
}

function batch(generation: JournalGeneration, seq: number, acked: number, entries: JournalEntry[]) {
  const size = entries.reduce((sum, e) => sum + journalEntrySize(e), 0);
  return encodeBatch(generation, seq, acked, entries, size);
}

/** A journal file: the start, then the given batches back to back, then `tail` zeros. */
function journal(generation: JournalGeneration, batches: Uint8Array[], tail = 64): Uint8Array {
  const parts = [encodeJournalStart(generation.salt, generation.base), ...batches];
  const size = parts.reduce((sum, p) => sum + p.length, 0) + tail;
  const out = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function flip(bytes: Uint8Array, at: number): void {
  bytes[at] = (bytes[at] ?? 0) ^ 0xff;
}

const gen: JournalGeneration = { salt: 0x1234_5678, base: 10, slot: 0 };

describe("journal format", () => {
  it("reads back the batches of the current generation, in order", () => {
    const b10 = batch(gen, 10, 9, [entry("s1", 24, "one"), entry("s2", 24, "two")]);
    const b11 = batch(gen, 11, 10, [entry("s1", 35, "three")]);
    const scan = scanJournal(journal(gen, [b10, b11]));
    expect(scan).toMatchObject({
      status: "ok",
      batches: 2,
      nextSeq: 12,
      end: JOURNAL_BODY + b10.length + b11.length,
    });
    if (scan.status !== "ok") return;
    expect(
      scan.records.map((r) => [r.sessionId, r.offset, new TextDecoder().decode(r.payload)]),
    ).toEqual([
      ["s1", 24, "one"],
      ["s2", 24, "two"],
      ["s1", 35, "three"],
    ]);
  });

  it("ends at a batch of an earlier generation: its checksum uses another salt", () => {
    const old = { ...gen, salt: 99 };
    const b10 = batch(gen, 10, 9, [entry("s1", 24, "new")]);
    const stale = batch(old, 11, 10, [entry("s1", 27, "old")]);
    const scan = scanJournal(journal(gen, [b10, stale]));
    expect(scan).toMatchObject({ status: "ok", batches: 1, nextSeq: 11 });
  });

  it("ends at a batch with the wrong sequence number", () => {
    const b10 = batch(gen, 10, 9, [entry("s1", 24, "a")]);
    const b12 = batch(gen, 12, 9, [entry("s1", 33, "b")]);
    expect(scanJournal(journal(gen, [b10, b12]))).toMatchObject({ status: "ok", batches: 1 });
  });

  it("takes a damaged batch followed only by batches that were in flight with it for a torn tail", () => {
    const b10 = batch(gen, 10, 9, [entry("s1", 24, "a")]);
    const b11 = batch(gen, 11, 10, [entry("s2", 24, "b")]);
    // b12 was formed while b11 was still being fsynced: it says 10 was the last acknowledged.
    const b12 = batch(gen, 12, 10, [entry("s3", 24, "c")]);
    const bytes = journal(gen, [b10, b11, b12]);
    flip(bytes, JOURNAL_BODY + b10.length + 20);
    expect(scanJournal(bytes)).toMatchObject({ status: "ok", batches: 1, nextSeq: 11 });
  });

  it("reports damage when a later batch shows the damaged one was acknowledged", () => {
    const b10 = batch(gen, 10, 9, [entry("s1", 24, "a")]);
    const b11 = batch(gen, 11, 10, [entry("s2", 24, "b")]);
    const b12 = batch(gen, 12, 11, [entry("s3", 24, "c")]);
    const bytes = journal(gen, [b10, b11, b12]);
    flip(bytes, JOURNAL_BODY + b10.length + 20);
    const scan = scanJournal(bytes);
    expect(scan).toMatchObject({ status: "corrupt", offset: JOURNAL_BODY + b10.length });
  });

  it("uses the valid slot with the higher base, and falls back when one is torn", () => {
    const next: JournalGeneration = { salt: 7, base: 20, slot: 1 };
    const b20 = batch(next, 20, 19, [entry("s1", 24, "x")]);
    const bytes = journal(gen, [b20]);
    bytes.set(encodeSlot(next.salt, next.base), slotOffset(1));
    expect(scanJournal(bytes)).toMatchObject({ status: "ok", generation: next, batches: 1 });
    flip(bytes, slotOffset(1) + 3);
    expect(scanJournal(bytes)).toMatchObject({ status: "ok", generation: gen, batches: 0 });
    flip(bytes, slotOffset(0) + 3);
    expect(scanJournal(bytes)).toMatchObject({ status: "bad" });
  });

  it("refuses a file that is not a journal", () => {
    expect(scanJournal(new TextEncoder().encode("hello"))).toMatchObject({ status: "bad" });
  });
});
