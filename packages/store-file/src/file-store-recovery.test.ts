// Recovery of damaged session logs: what is repaired, what is quarantined, and the
// rules of version 1 stores.
import { readdir, readFile, stat, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FileStoreError } from "./index.js";
import { logFileName } from "./log-file.js";
import {
  capture,
  collect,
  crashCopy,
  faultyFs,
  flip,
  incoming,
  logPath,
  markVersion1,
  messageIds,
  open,
  openAt,
  reopen,
  root,
  SESSION_A,
  SESSION_B,
  useStoreHarness,
} from "./testing/store-harness.js";

useStoreHarness();

/** Checkpoints a0 and a1 of session A, then closes with a2 and b0; returns A's size after a1. */
async function closeAfterA2AndB0(): Promise<number> {
  const store = open();
  await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
  await store.append(SESSION_A, incoming(SESSION_A, "a1"));
  await store.checkpoint();
  const intact = (await stat(logPath(SESSION_A))).size;
  await store.append(SESSION_A, incoming(SESSION_A, "a2"));
  await store.append(SESSION_B, incoming(SESSION_B, "b0", true));
  await store.close();
  return intact;
}

describe("recovery of session logs", () => {
  it("repairs a log torn by a crash from the journal, which still holds the torn record", async () => {
    const store = open();
    await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
    await store.append(SESSION_A, incoming(SESSION_A, "a1"));
    await store.checkpoint();
    const intact = await readFile(logPath(SESSION_A));
    await store.append(SESSION_A, incoming(SESSION_A, "a2"));
    await store.append(SESSION_B, incoming(SESSION_B, "b0", true));
    // The crash came while a checkpoint was writing a2 and b0: a2's frame is cut
    // short, b0's new log holds nothing yet, and the journal still holds both.
    const copy = await crashCopy();
    const copiedLog = join(copy, "logs", logFileName(SESSION_A));
    await writeFile(copiedLog, Buffer.concat([intact, Buffer.from([9, 0, 0, 0, 1, 2, 3])]));
    await writeFile(join(copy, "logs", logFileName(SESSION_B)), new Uint8Array(0));
    const logger = capture();
    const restarted = openAt(copy, { logger });
    const loaded = await collect(restarted);
    expect(loaded.map(messageIds)).toEqual([["b0"], ["a0", "a1", "a2"]]);
    expect(logger.lines.filter((line) => line.startsWith("error"))).toEqual([]);
    await restarted.append(SESSION_A, incoming(SESSION_A, "a3"));
    expect(
      messageIds({ sessionId: SESSION_A, records: [...((await restarted.read(SESSION_A)) ?? [])] }),
    ).toEqual(["a0", "a1", "a2", "a3"]);
  });

  it("quarantines a session whose acknowledged last record was torn after a clean shutdown", async () => {
    // close() checkpoints, so the journal no longer holds a2: the log is its only copy.
    const intact = await closeAfterA2AndB0();
    await truncate(logPath(SESSION_A), intact + 11);
    const torn = await readFile(logPath(SESSION_A));
    const logger = capture();
    const store = open({ logger });
    const loaded = await collect(store);
    const a = loaded.find((session) => session.sessionId === SESSION_A);
    expect(a && "error" in a ? a.error : "").toMatch(
      /last record, at byte \d+, is cut off .* every record of this log was acknowledged/,
    );
    expect(messageIds(loaded.find((session) => session.sessionId === SESSION_B))).toEqual(["b0"]);
    expect(
      logger.lines.some((line) => line.startsWith(`error session ${SESSION_A} quarantined`)),
    ).toBe(true);
    expect(logger.lines.some((line) => line.includes("torn tail"))).toBe(false);
    // Left exactly as found, for an operator.
    expect(await readFile(logPath(SESSION_A))).toEqual(torn);
    await expect(store.append(SESSION_A, incoming(SESSION_A, "a2-retry"))).rejects.toMatchObject({
      code: "SESSION_QUARANTINED",
    });
  });

  it("quarantines a session whose checkpointed log gained a zero-filled tail", async () => {
    let store = open();
    await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
    await store.close();
    const bytes = await readFile(logPath(SESSION_A));
    await writeFile(logPath(SESSION_A), Buffer.concat([bytes, new Uint8Array(4096)]));
    store = open();
    const [loaded] = await collect(store);
    expect(loaded && "error" in loaded ? loaded.error : "").toMatch(/cut off or damaged/);
    expect((await stat(logPath(SESSION_A))).size).toBe(bytes.length + 4096);
  });

  it("cuts off a torn or zero-filled tail in a version 1 store, which wrote logs without a journal", async () => {
    const intact = await closeAfterA2AndB0();
    await markVersion1();
    await truncate(logPath(SESSION_A), intact + 11);
    const bBytes = await readFile(logPath(SESSION_B));
    await writeFile(logPath(SESSION_B), Buffer.concat([bBytes, new Uint8Array(4096)]));
    const logger = capture();
    let store = open({ logger });
    const loaded = await collect(store);
    expect(loaded.map(messageIds)).toEqual([["b0"], ["a0", "a1"]]);
    expect((await stat(logPath(SESSION_A))).size).toBe(intact);
    expect((await stat(logPath(SESSION_B))).size).toBe(bBytes.length);
    expect(logger.lines.some((line) => line.includes(`torn tail of session ${SESSION_A}`))).toBe(
      true,
    );
    await store.append(SESSION_A, incoming(SESSION_A, "a2-retry"));
    store = await reopen(store);
    expect((await collect(store)).map(messageIds)).toEqual([["b0"], ["a0", "a1", "a2-retry"]]);
  });

  it("quarantines a session whose log is damaged in the middle and recovers the others", async () => {
    let store = open();
    await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
    await store.append(SESSION_A, incoming(SESSION_A, "a1"));
    await store.append(SESSION_A, incoming(SESSION_A, "a2"));
    await store.append(SESSION_B, incoming(SESSION_B, "b0", true));
    await store.close();
    const bytes = await readFile(logPath(SESSION_A));
    flip(bytes, Math.floor(bytes.length / 2));
    await writeFile(logPath(SESSION_A), bytes);
    const logger = capture();
    store = open({ logger });
    const loaded = await collect(store);
    const a = loaded.find((s) => s.sessionId === SESSION_A);
    const b = loaded.find((s) => s.sessionId === SESSION_B);
    expect(a && "error" in a ? a.error : "").toMatch(/damaged record at byte \d+/);
    expect(b && "records" in b ? b.records.length : -1).toBe(1);
    expect(logger.lines.some((l) => l.startsWith(`error session ${SESSION_A} quarantined`))).toBe(
      true,
    );
    // The damaged file is left exactly as found, and is not written to.
    expect(await readFile(logPath(SESSION_A))).toEqual(bytes);
    await expect(store.append(SESSION_A, incoming(SESSION_A, "a3"))).rejects.toMatchObject({
      code: "SESSION_QUARANTINED",
    });
    await expect(store.read(SESSION_A)).rejects.toBeInstanceOf(FileStoreError);
    await store.append(SESSION_B, incoming(SESSION_B, "b1"));
  });

  it("quarantines a log whose header is damaged", async () => {
    let store = open();
    await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
    await store.close();
    const bytes = await readFile(logPath(SESSION_A));
    flip(bytes, 12); // the id length
    await writeFile(logPath(SESSION_A), bytes);
    store = open();
    const [loaded] = await collect(store);
    expect(loaded).toMatchObject({ sessionId: SESSION_A });
    expect(loaded && "error" in loaded).toBe(true);
  });

  it("quarantines a session whose log became zero-length, rather than letting it vanish", async () => {
    let store = open();
    await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
    await store.append(SESSION_B, incoming(SESSION_B, "b0", true));
    await store.close();
    await writeFile(logPath(SESSION_A), new Uint8Array(0));
    await writeFile(logPath(SESSION_B), (await readFile(logPath(SESSION_B))).subarray(0, 30));
    const logger = capture();
    store = open({ logger });
    const loaded = await collect(store);
    expect(loaded.map((session) => session.sessionId).sort()).toEqual(
      [SESSION_A, SESSION_B].sort(),
    );
    for (const session of loaded) {
      expect("error" in session ? session.error : "").toMatch(/holds no complete record/);
    }
    // Left in place, and the ids stay taken.
    expect((await stat(logPath(SESSION_A))).size).toBe(0);
    await expect(store.append(SESSION_A, incoming(SESSION_A, "a1"))).rejects.toMatchObject({
      code: "SESSION_QUARANTINED",
    });
  });

  it("quarantines a zero-length log it finds on its first append without a prior loadAll", async () => {
    let store = open();
    await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
    await store.close();
    await writeFile(logPath(SESSION_A), new Uint8Array(0));
    store = open();
    await expect(store.append(SESSION_A, incoming(SESSION_A, "a1"))).rejects.toMatchObject({
      code: "SESSION_QUARANTINED",
    });
    await expect(store.read(SESSION_A)).rejects.toMatchObject({ code: "SESSION_QUARANTINED" });
  });

  it("removes the log of a deleted session even when it is empty", async () => {
    let store = open();
    await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
    await store.delete(SESSION_A);
    await store.close();
    // The delete's unlink was lost, and the file with it emptied.
    await writeFile(logPath(SESSION_A), new Uint8Array(0));
    store = open();
    expect(await collect(store)).toEqual([{ sessionId: SESSION_A, records: [] }]);
    expect(await readdir(join(root(), "data", "logs"))).toEqual([]);
  });

  it("removes an empty or half-created log in a version 1 store: nothing in it was acknowledged", async () => {
    let store = open();
    await store.ready();
    await store.close();
    await markVersion1();
    await writeFile(logPath(SESSION_A), new Uint8Array(0));
    await writeFile(logPath(SESSION_B), Buffer.from("MACPSL"));
    const logger = capture();
    store = open({ logger });
    expect(await collect(store)).toEqual([]);
    expect(await readdir(join(root(), "data", "logs"))).toEqual([]);
    expect(logger.lines.filter((l) => l.includes("no complete record"))).toHaveLength(2);
    // The id was never acknowledged, so it is free.
    await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
    expect((await store.read(SESSION_A))?.length).toBe(1);
  });

  it("handles an empty log of a version 1 store on its first append without a prior loadAll", async () => {
    let store = open();
    await store.ready();
    await store.close();
    await markVersion1();
    await writeFile(logPath(SESSION_A), new Uint8Array(0));
    store = open();
    await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
    store = await reopen(store);
    const [loaded] = await collect(store);
    expect(loaded && "records" in loaded ? loaded.records.length : -1).toBe(1);
  });

  it("reads the durable prefix of a version 1 log it did not load", async () => {
    let store = open();
    await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
    await store.append(SESSION_A, incoming(SESSION_A, "a1"));
    await store.close();
    await markVersion1();
    const bytes = await readFile(logPath(SESSION_A));
    await writeFile(logPath(SESSION_A), bytes.subarray(0, bytes.length - 3));
    store = open();
    expect((await store.read(SESSION_A))?.length).toBe(1);
  });

  it("refuses to read a checkpointed log it did not load whose last record was torn", async () => {
    let store = open();
    await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
    await store.append(SESSION_A, incoming(SESSION_A, "a1"));
    await store.close();
    const bytes = await readFile(logPath(SESSION_A));
    await writeFile(logPath(SESSION_A), bytes.subarray(0, bytes.length - 3));
    store = open();
    await expect(store.read(SESSION_A)).rejects.toMatchObject({ code: "SESSION_QUARANTINED" });
  });

  it("quarantines a log it cannot read rather than skipping it", async () => {
    let store = open();
    await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
    store = await reopen(store, { fileSystem: faultyFs({ readError: "EIO" }) });
    const [loaded] = await collect(store);
    expect(loaded).toMatchObject({ sessionId: SESSION_A, error: expect.stringMatching(/EIO/) });
  });
});
