// Failing disks: what a failed write, fsync, creation or truncation leaves behind.
import { readFile, stat } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import {
  bytesOf,
  collect,
  crashCopy,
  type Faults,
  faultyFs,
  incoming,
  logPath,
  messageIds,
  open,
  openAt,
  reopen,
  SESSION_A,
  SESSION_B,
  useStoreHarness,
} from "./testing/store-harness.js";

useStoreHarness();

describe("disk failures", () => {
  it("refuses appends but keeps reads on a read-only file system (simulated)", async () => {
    let store = open();
    await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
    await store.checkpoint();
    const before = await readFile(logPath(SESSION_A));
    const faults: Faults = { createError: "EROFS", writeError: "EROFS", truncateError: "EROFS" };
    store = await reopen(store, { fileSystem: faultyFs(faults) });
    expect(await collect(store)).toHaveLength(1);
    await expect(store.append(SESSION_B, incoming(SESSION_B, "b0", true))).rejects.toMatchObject({
      code: "IO_FAILED",
      message: expect.stringMatching(/EROFS/),
    });
    await expect(store.append(SESSION_A, incoming(SESSION_A, "a1"))).rejects.toMatchObject({
      code: "IO_FAILED",
    });
    expect(bytesOf(await store.read(SESSION_A))).toEqual(
      bytesOf([incoming(SESSION_A, "a0", true)]),
    );
    expect(await readFile(logPath(SESSION_A))).toEqual(before);
    expect(store.stats().failedAppends).toBe(2);
  });

  it("leaves no trace of a record whose write failed half-way (disk full)", async () => {
    const faults: Faults = {};
    let store = open({ fileSystem: faultyFs(faults) });
    await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
    await store.checkpoint();
    const good = (await stat(logPath(SESSION_A))).size;
    faults.writeError = "ENOSPC";
    faults.writeBudget = 17; // part of the next batch reaches the journal
    const refused = store.append(SESSION_A, incoming(SESSION_A, "a1"));
    await expect(refused).rejects.toMatchObject({ code: "IO_FAILED" });
    await expect(refused).rejects.toThrow(/ENOSPC/);
    expect((await stat(logPath(SESSION_A))).size).toBe(good);
    // A new session cannot even get its header down.
    faults.writeBudget = 5;
    await expect(store.append(SESSION_B, incoming(SESSION_B, "b0", true))).rejects.toThrow(
      /ENOSPC/,
    );
    await expect(stat(logPath(SESSION_B))).rejects.toMatchObject({ code: "ENOENT" });
    expect((await store.read(SESSION_A))?.length).toBe(1);
    // Space is freed: the same records go through.
    faults.writeError = undefined;
    await store.append(SESSION_A, incoming(SESSION_A, "a1"));
    await store.append(SESSION_B, incoming(SESSION_B, "b0", true));
    store = await reopen(store);
    const loaded = await collect(store);
    const a = loaded.find((s) => s.sessionId === SESSION_A);
    expect(a && "records" in a ? bytesOf(a.records) : []).toEqual(
      bytesOf([incoming(SESSION_A, "a0", true), incoming(SESSION_A, "a1")]),
    );
  });

  it("erases a batch whose journal fsync failed, even when erasing it fails too", async () => {
    const faults: Faults = {};
    let store = open({ fileSystem: faultyFs(faults) });
    await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
    // The fsync fails, and so does the one after zeroing the batch's magic: the
    // refused batch may still be on disk. The next batch is written in its place.
    faults.datasyncError = "EIO";
    await expect(store.append(SESSION_A, incoming(SESSION_A, "a1"))).rejects.toThrow(/EIO/);
    await expect(store.append(SESSION_B, incoming(SESSION_B, "b0", true))).rejects.toThrow(/EIO/);
    faults.datasyncError = undefined;
    await store.append(SESSION_A, incoming(SESSION_A, "a1-retry"));
    expect(
      messageIds({ sessionId: SESSION_A, records: (await store.read(SESSION_A)) ?? [] }),
    ).toEqual(["a0", "a1-retry"]);
    // After a crash (the journal is replayed) and after a clean restart alike.
    const crashed = openAt(await crashCopy());
    expect((await collect(crashed)).map(messageIds)).toEqual([["a0", "a1-retry"]]);
    store = await reopen(store);
    expect((await collect(store)).map(messageIds)).toEqual([["a0", "a1-retry"]]);
  });

  it("refuses the whole batch when the journal write fails, and keeps none of it", async () => {
    const faults: Faults = { scope: "journal" };
    let store = open({ fileSystem: faultyFs(faults) });
    await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
    faults.writeError = "ENOSPC";
    faults.writeBudget = 40;
    const results = await Promise.allSettled([
      store.append(SESSION_A, incoming(SESSION_A, "a1")),
      store.append(SESSION_B, incoming(SESSION_B, "b0", true)),
    ]);
    expect(results.map((r) => r.status)).toEqual(["rejected", "rejected"]);
    expect(store.stats().failedAppends).toBe(2);
    faults.writeError = undefined;
    await store.append(SESSION_B, incoming(SESSION_B, "b0-retry", true));
    const crashed = openAt(await crashCopy());
    expect((await collect(crashed)).map(messageIds).sort()).toEqual([["a0"], ["b0-retry"]]);
    store = await reopen(store);
    expect((await collect(store)).map(messageIds).sort()).toEqual([["a0"], ["b0-retry"]]);
  });

  it("keeps records in the journal while a checkpoint cannot write their log (disk full)", async () => {
    const faults: Faults = { scope: "logs" };
    let store = open({ fileSystem: faultyFs(faults) });
    await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
    await store.checkpoint();
    const good = await readFile(logPath(SESSION_A));
    await store.append(SESSION_A, incoming(SESSION_A, "a1"));
    await store.append(SESSION_B, incoming(SESSION_B, "b0", true));
    faults.writeError = "ENOSPC";
    faults.writeBudget = 30; // part of a log write reaches the disk
    await expect(store.checkpoint()).rejects.toThrow(/ENOSPC/);
    // The logs are as they were (the half-written one cut back, the new one removed)...
    expect(await readFile(logPath(SESSION_A))).toEqual(good);
    await expect(stat(logPath(SESSION_B))).rejects.toMatchObject({ code: "ENOENT" });
    // ...and the records are still durable, in the journal, and readable.
    expect(
      messageIds({ sessionId: SESSION_A, records: (await store.read(SESSION_A)) ?? [] }),
    ).toEqual(["a0", "a1"]);
    expect(store.stats().journalRecords).toBe(2);
    const crashed = openAt(await crashCopy());
    expect((await collect(crashed)).map(messageIds).sort()).toEqual([["a0", "a1"], ["b0"]]);
    // Appends go on meanwhile; once there is space, a checkpoint writes it all.
    await store.append(SESSION_A, incoming(SESSION_A, "a2"));
    faults.writeError = undefined;
    await store.checkpoint();
    expect(store.stats().journalRecords).toBe(0);
    store = await reopen(store);
    expect((await collect(store)).map(messageIds).sort()).toEqual([["a0", "a1", "a2"], ["b0"]]);
  });

  it("cuts a failed log write back, and repairs before the next write if that fails too", async () => {
    const faults: Faults = { scope: "logs" };
    let store = open({ fileSystem: faultyFs(faults) });
    await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
    await store.checkpoint();
    const good = (await stat(logPath(SESSION_A))).size;
    await store.append(SESSION_A, incoming(SESSION_A, "a1"));
    // The log's fsync fails and so does the truncate that would undo the write.
    faults.datasyncError = "EIO";
    faults.truncateError = "EIO";
    await expect(store.checkpoint()).rejects.toThrow(/EIO/);
    expect((await stat(logPath(SESSION_A))).size).toBeGreaterThan(good);
    faults.datasyncError = undefined;
    await expect(store.checkpoint()).rejects.toThrow(/EIO/);
    faults.truncateError = undefined;
    await store.checkpoint();
    store = await reopen(store);
    expect((await collect(store)).map(messageIds)).toEqual([["a0", "a1"]]);
  });

  it("overwrites a new log whose creation failed and could not be removed", async () => {
    const faults: Faults = { scope: "logs" };
    let store = open({ fileSystem: faultyFs(faults) });
    await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
    faults.datasyncError = "EIO";
    faults.unlinkError = "EIO";
    await expect(store.checkpoint()).rejects.toThrow(/EIO/);
    // The file is there, but it is not what the store reads: the journal is.
    expect((await stat(logPath(SESSION_A))).size).toBeGreaterThan(0);
    expect((await store.read(SESSION_A))?.length).toBe(1);
    faults.datasyncError = undefined;
    faults.unlinkError = undefined;
    await store.append(SESSION_A, incoming(SESSION_A, "a1"));
    store = await reopen(store);
    expect((await collect(store)).map(messageIds)).toEqual([["a0", "a1"]]);
  });
});
