import { create } from "@bufbuild/protobuf";
import { type Envelope, EnvelopeSchema } from "@macp/proto";
import { describe, expect, it } from "vitest";
import { CompactLog } from "./compact-log.js";
import type { IncomingRecord, LogRecord, SessionBinding } from "./log-record.js";
import { createMemoryStore } from "./memory-store.js";

const SESSION = "5f0c7c43-1c0e-4c52-9a43-3f1f2a7f9d10";
const MODE = "macp.mode.decision.v1";

function envelope(fields: Partial<Omit<Envelope, "$typeName">> = {}): Envelope {
  return create(EnvelopeSchema, {
    macpVersion: "1.0",
    mode: MODE,
    messageType: "Proposal",
    messageId: `m-${Math.random()}`,
    sessionId: SESSION,
    sender: "agent://alpha",
    timestampUnixMs: 1_700_000_000_000n,
    payload: new Uint8Array([1, 2, 3]),
    ...fields,
  });
}

function incoming(fields: Partial<Omit<Envelope, "$typeName">> = {}, at = 1000): IncomingRecord {
  return { kind: "incoming", envelope: envelope(fields), receivedAtMs: at };
}

const binding = { modeVersion: "1.0.0", expiresAtMs: 5000 } as unknown as SessionBinding;

function logOf(records: readonly LogRecord[]): CompactLog {
  const log = new CompactLog();
  for (const record of records) log.append(record);
  return log;
}

describe("CompactLog", () => {
  it("gives back every kind of record as appended, in order", () => {
    const records: LogRecord[] = [
      { ...incoming({ messageType: "SessionStart" }, 1), binding },
      incoming({ sender: "agent://alpha" }, 2),
      incoming({ sender: "agent://beta", messageType: "Evaluation", payload: new Uint8Array() }, 3),
      { kind: "internal", type: "SessionSuspend", receivedAtMs: 4, payload: new Uint8Array([9]) },
      incoming({ sender: "agent://alpha", messageType: "Vote", timestampUnixMs: -5n }, 5.5),
      { kind: "internal", type: "TtlExpired", receivedAtMs: 6, payload: new Uint8Array() },
    ];
    const log = logOf(records);
    expect(log.length).toBe(records.length);
    expect(log.records()).toEqual(records);
  });

  it("keeps payloads of every size, across chunk boundaries and beyond them", () => {
    const sizes = [1, 100, 255, 256, 257, 4096, 4097, 70_000, 3, 0, 65_536, 4000];
    const records = Array.from({ length: 600 }, (_, index) => {
      const size = sizes[index % sizes.length] as number;
      const payload = new Uint8Array(size).map((_, byte) => (index + byte) % 251);
      return incoming({ payload, messageId: `m-${index}` }, index);
    });
    const read = logOf(records).records() as IncomingRecord[];
    expect(read).toHaveLength(records.length);
    // Bytes compared as buffers: a deep equality over 4 MB of payloads is slow.
    const mismatched = read.filter((record, index) => {
      const expected = (records[index] as IncomingRecord).envelope;
      return (
        record.envelope.messageId !== expected.messageId ||
        !Buffer.from(record.envelope.payload).equals(Buffer.from(expected.payload))
      );
    });
    expect(mismatched).toEqual([]);
  });

  it("copies payloads in: a change to the request buffer afterwards does not reach the log", () => {
    const request = new Uint8Array([7, 7, 7, 7, 7, 7]);
    const record = incoming({ payload: request.subarray(2, 5) });
    const log = logOf([record]);
    request.fill(0);
    const [read] = log.records() as [IncomingRecord];
    expect([...read.envelope.payload]).toEqual([7, 7, 7]);
  });

  it("copies payloads out: a reader that changes what it read does not change the log", () => {
    const log = logOf([incoming({ payload: new Uint8Array([1, 2]) })]);
    const [first] = log.records() as [IncomingRecord];
    first.envelope.payload.fill(0);
    const [again] = log.records() as [IncomingRecord];
    expect([...again.envelope.payload]).toEqual([1, 2]);
    expect(again).not.toBe(first);
  });

  it("keeps exactly what does not fit a row: unknown fields, a timestamp beyond 2^53, another session", () => {
    const unknown = incoming();
    unknown.envelope.$unknown = [{ no: 99, wireType: 0, data: new Uint8Array([1]) }];
    const records: LogRecord[] = [
      incoming(),
      unknown,
      incoming({ timestampUnixMs: 2n ** 60n + 1n }),
      incoming({ sessionId: "another" }),
      incoming({ mode: "ext.other.v1" }),
      incoming({ macpVersion: "2.0" }),
      incoming(),
    ];
    const read = logOf(records).records();
    expect(read).toEqual(records);
    expect((read[1] as IncomingRecord).envelope.$unknown).toHaveLength(1);
    expect((read[2] as IncomingRecord).envelope.timestampUnixMs).toBe(2n ** 60n + 1n);
  });

  it("is empty until something is appended", () => {
    const log = new CompactLog();
    expect(log.length).toBe(0);
    expect(log.records()).toEqual([]);
  });
});

describe("the memory store on compact logs", () => {
  it("reads back equal records, counts them, and forgets an evicted session's", () => {
    const store = createMemoryStore();
    const records = [{ ...incoming({ messageType: "SessionStart" }), binding }, incoming()];
    for (const record of records) store.append(SESSION, record);
    expect(store.read(SESSION)).toEqual(records);
    expect(store.recordCount).toBe(2);
    store.evicted?.(SESSION);
    expect(store.read(SESSION)).toBeUndefined();
    expect(store.recordCount).toBe(0);
    expect([...(store.loadAll() as Iterable<unknown>)]).toEqual([
      { sessionId: SESSION, records: [] },
    ]);
  });
});
