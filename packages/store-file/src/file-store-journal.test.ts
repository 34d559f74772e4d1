// The journal and checkpoints: replay after a crash, torn and damaged journals, upgrades.
import { readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createFileStore } from "./index.js";
import { JOURNAL_BODY, scanJournal } from "./journal-format.js";
import { logFileName } from "./log-file.js";
import {
  capture,
  collect,
  crashCopy,
  type Faults,
  faultyFs,
  flip,
  incoming,
  logPath,
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

/** Appends a0, a1 and a2 of session A, then crashes: the copy's directory, journal path and bytes. */
async function crashAfterA012(): Promise<{ crashed: string; journal: string; bytes: Buffer }> {
  const store = open();
  for (const id of ["a0", "a1", "a2"]) {
    await store.append(SESSION_A, incoming(SESSION_A, id, id === "a0"));
  }
  const crashed = await crashCopy();
  const journal = join(crashed, "journal.log");
  return { crashed, journal, bytes: await readFile(journal) };
}

describe("journal and checkpoints", () => {
  it("replays the journal after a crash into the logs, and then starts it over", async () => {
    const store = open();
    await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
    await store.append(SESSION_A, incoming(SESSION_A, "a1"));
    await store.checkpoint();
    await store.append(SESSION_A, incoming(SESSION_A, "a2"));
    await store.append(SESSION_B, incoming(SESSION_B, "b0", true));
    expect(store.stats().journalRecords).toBe(2);
    const crashed = await crashCopy();
    const logger = capture();
    let restarted = openAt(crashed, { logger });
    await restarted.ready();
    expect(logger.lines.some((line) => line.includes("replaying the journal"))).toBe(true);
    // Replay wrote the logs and made them durable: nothing is left to the journal.
    expect(restarted.stats()).toMatchObject({ journalRecords: 0, checkpoints: 1, logSyncs: 2 });
    expect((await collect(restarted)).map(messageIds).sort()).toEqual([["a0", "a1", "a2"], ["b0"]]);
    await restarted.close();
    const quiet = capture();
    restarted = openAt(crashed, { logger: quiet });
    expect((await collect(restarted)).map(messageIds).sort()).toEqual([["a0", "a1", "a2"], ["b0"]]);
    expect(quiet.lines).toEqual([]);
  });

  it("replays a journal whose records are already in the logs without copying them twice", async () => {
    const faults: Faults = { scope: "journal" };
    const store = open({ fileSystem: faultyFs(faults) });
    await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
    await store.append(SESSION_A, incoming(SESSION_A, "a1"));
    await store.append(SESSION_B, incoming(SESSION_B, "b0", true));
    // The checkpoint writes both logs, then cannot start a new journal generation.
    faults.writeError = "EIO";
    await expect(store.checkpoint()).rejects.toThrow(/EIO/);
    expect((await stat(logPath(SESSION_A))).size).toBeGreaterThan(0);
    // No batch goes to the journal until a generation starts.
    await expect(store.append(SESSION_A, incoming(SESSION_A, "a2"))).rejects.toThrow(/EIO/);
    const crashed = openAt(await crashCopy());
    expect((await collect(crashed)).map(messageIds).sort()).toEqual([["a0", "a1"], ["b0"]]);
    faults.writeError = undefined;
    await store.append(SESSION_A, incoming(SESSION_A, "a2"));
    const again = openAt(await crashCopy());
    expect((await collect(again)).map(messageIds).sort()).toEqual([["a0", "a1", "a2"], ["b0"]]);
  });

  it("cuts a torn batch off the end of the journal", async () => {
    const { crashed, journal, bytes } = await crashAfterA012();
    const scan = scanJournal(bytes);
    if (scan.status !== "ok") throw new Error(scan.status);
    bytes.fill(0, scan.end - 5, scan.end); // the last batch never fully reached the disk
    await writeFile(journal, bytes);
    const logger = capture();
    const restarted = openAt(crashed, { logger });
    expect((await collect(restarted)).map(messageIds)).toEqual([["a0", "a1"]]);
    expect(logger.lines.filter((line) => line.startsWith("error"))).toEqual([]);
    await restarted.append(SESSION_A, incoming(SESSION_A, "a2-retry"));
    expect((await restarted.read(SESSION_A))?.length).toBe(3);
  });

  it("refuses to start on a journal damaged before batches that were acknowledged", async () => {
    const { crashed, journal, bytes } = await crashAfterA012();
    flip(bytes, JOURNAL_BODY + 40); // inside the first batch
    await writeFile(journal, bytes);
    const restarted = openAt(crashed);
    await expect(restarted.ready()).rejects.toMatchObject({
      code: "UNUSABLE_DIRECTORY",
      message: expect.stringMatching(/journal .* is damaged .* acknowledged/),
    });
  });

  it("quarantines a session whose log lost checkpointed records, and keeps its journal records aside", async () => {
    const store = open();
    await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
    await store.append(SESSION_A, incoming(SESSION_A, "a1"));
    await store.append(SESSION_B, incoming(SESSION_B, "b0", true));
    await store.checkpoint();
    const withOne = (await readFile(logPath(SESSION_A))).length;
    await store.append(SESSION_A, incoming(SESSION_A, "a2"));
    await store.append(SESSION_B, incoming(SESSION_B, "b1"));
    const crashed = await crashCopy();
    const log = join(crashed, "logs", logFileName(SESSION_A));
    const full = await readFile(log);
    // Cut a1 away: a0 stays valid, but the journal continues the log after a1.
    const a0Only = await (async () => {
      const probe = openAt(join(root(), "probe"));
      await probe.append(SESSION_A, incoming(SESSION_A, "a0", true));
      await probe.close();
      return (await readFile(join(root(), "probe", "logs", logFileName(SESSION_A)))).length;
    })();
    expect(a0Only).toBeLessThan(withOne);
    await writeFile(log, full.subarray(0, a0Only));
    const logger = capture();
    const restarted = openAt(crashed, { logger });
    const loaded = await collect(restarted);
    const a = loaded.find((stored) => stored.sessionId === SESSION_A);
    expect(a && "error" in a ? a.error : "").toMatch(/acknowledged records are missing/);
    expect(messageIds(loaded.find((stored) => stored.sessionId === SESSION_B))).toEqual([
      "b0",
      "b1",
    ]);
    expect(await readFile(log)).toEqual(full.subarray(0, a0Only));
    const aside = await readdir(join(crashed, "quarantine"));
    expect(aside).toEqual([`${logFileName(SESSION_A)}.from-${withOne}`]);
    expect(logger.lines.some((line) => line.includes("kept the journal's records"))).toBe(true);
    await expect(restarted.append(SESSION_A, incoming(SESSION_A, "a3"))).rejects.toMatchObject({
      code: "SESSION_QUARANTINED",
    });
  });

  it("checkpoints by itself whenever the journal fills", async () => {
    let store = open({ journalBytes: 4096 });
    for (let n = 0; n < 100; n++) {
      await store.append(SESSION_A, incoming(SESSION_A, `a${n}`, n === 0));
    }
    const stats = store.stats();
    expect(stats.checkpoints).toBeGreaterThanOrEqual(3);
    expect(stats.journalRecords).toBeLessThan(100);
    expect((await stat(logPath(SESSION_A))).size).toBeGreaterThan(0);
    const crashed = openAt(await crashCopy());
    expect((await collect(crashed)).map((s) => messageIds(s).length)).toEqual([100]);
    store = await reopen(store);
    expect((await collect(store)).map((s) => messageIds(s).length)).toEqual([100]);
  });

  it("reads a version 1 store and upgrades it when it creates the journal", async () => {
    let store = open();
    await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
    await store.close();
    // What version 1 left: the marker, the logs, no journal.
    const marker = join(root(), "data", "macp-store.json");
    await writeFile(marker, '{"format":"macp-store-file","version":1}\n');
    await rm(join(root(), "data", "journal.log"));
    store = open();
    expect((await collect(store)).map(messageIds)).toEqual([["a0"]]);
    expect(JSON.parse(await readFile(marker, "utf8")).version).toBe(1);
    await store.append(SESSION_A, incoming(SESSION_A, "a1"));
    expect(JSON.parse(await readFile(marker, "utf8")).version).toBe(2);
    store = await reopen(store);
    expect((await collect(store)).map(messageIds)).toEqual([["a0", "a1"]]);
  });

  it("validates the journal size", () => {
    expect(() => createFileStore({ journalBytes: 100 })).toThrow(RangeError);
    expect(() => createFileStore({ journalBytes: 1.5e6 + 0.5 })).toThrow(RangeError);
  });
});
