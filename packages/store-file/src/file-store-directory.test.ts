// The data directory: created, refused when unusable, read-only, and deleted sessions' tombstones.
import { chmod, mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createFileStore } from "./index.js";
import {
  capture,
  closeAfterTest,
  collect,
  faultyFs,
  flip,
  incoming,
  isRoot,
  logPath,
  open,
  reopen,
  root,
  SESSION_A,
  SESSION_B,
  useStoreHarness,
} from "./testing/store-harness.js";

useStoreHarness();

describe("data directory", () => {
  it("creates a missing directory with its parents", async () => {
    const directory = join(root(), "deep", "er", "data");
    const store = createFileStore({ directory, logger: capture() });
    closeAfterTest(store);
    expect(await collect(store)).toEqual([]);
    expect((await stat(join(directory, "logs"))).isDirectory()).toBe(true);
    expect(JSON.parse(await readFile(join(directory, "macp-store.json"), "utf8"))).toEqual({
      format: "macp-store-file",
      version: 2,
    });
  });

  it("refuses a directory it cannot list instead of starting empty", async () => {
    let store = open();
    await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
    await store.close();
    store = open({ fileSystem: faultyFs({ readdirError: "EACCES" }) });
    await expect(store.ready()).rejects.toMatchObject({ code: "UNUSABLE_DIRECTORY" });
    await expect(collect(store)).rejects.toThrow(/cannot read directory .*EACCES/);
  });

  it.skipIf(isRoot)("refuses an unreadable directory (real permissions)", async () => {
    let store = open();
    await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
    await store.close();
    await chmod(join(root(), "data"), 0o000);
    store = open();
    await expect(collect(store)).rejects.toMatchObject({ code: "UNUSABLE_DIRECTORY" });
  });

  it("refuses a non-empty directory that is not a store, and the reference runtime's layout", async () => {
    await mkdir(join(root(), "data", "sessions", "abc"), { recursive: true });
    await writeFile(join(root(), "data", "storage_version.json"), '{"version": 3}');
    const store = open();
    await expect(store.ready()).rejects.toThrow(/reference runtime's file layout/);
    const other = join(root(), "other");
    await mkdir(other);
    await writeFile(join(other, "notes.txt"), "mine");
    const foreign = createFileStore({ directory: other, logger: capture() });
    await expect(foreign.ready()).rejects.toThrow(/not a macp-store-file directory/);
  });

  it("refuses a store whose logs directory has gone", async () => {
    let store = open();
    await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
    await store.close();
    await rm(join(root(), "data", "logs"), { recursive: true });
    store = open();
    await expect(collect(store)).rejects.toThrow(/logs\/ directory is missing/);
  });

  it("refuses a second store on a directory open in this process", async () => {
    const first = open();
    await first.ready();
    const second = createFileStore({ directory: join(root(), "data"), logger: capture() });
    await expect(second.ready()).rejects.toThrow(/already open/);
    await first.close();
    const third = open();
    await third.ready();
  });

  it.skipIf(isRoot)(
    "refuses appends but keeps reads in a read-only directory (real permissions)",
    async () => {
      let store = open();
      await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
      await store.close();
      await chmod(logPath(SESSION_A), 0o400);
      await chmod(join(root(), "data", "journal.log"), 0o400);
      await chmod(join(root(), "data", "logs"), 0o500);
      await chmod(join(root(), "data"), 0o500);
      store = open();
      expect(await collect(store)).toHaveLength(1);
      await expect(store.append(SESSION_B, incoming(SESSION_B, "b0", true))).rejects.toMatchObject({
        code: "IO_FAILED",
        message: expect.stringMatching(/EACCES/),
      });
      await expect(store.append(SESSION_A, incoming(SESSION_A, "a1"))).rejects.toMatchObject({
        code: "IO_FAILED",
      });
      expect((await store.read(SESSION_A))?.length).toBe(1);
    },
  );

  it("deletes a session durably and keeps its id reserved across restarts", async () => {
    let store = open({ deleteTerminalAfterMs: 3_600_000 });
    expect(store.deleteTerminalAfterMs).toBe(3_600_000);
    await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
    await store.append(SESSION_B, incoming(SESSION_B, "b0", true));
    await store.delete(SESSION_A);
    await store.delete(SESSION_A); // idempotent
    expect(await store.read(SESSION_A)).toBeUndefined();
    await expect(stat(logPath(SESSION_A))).rejects.toMatchObject({ code: "ENOENT" });
    await expect(store.append(SESSION_A, incoming(SESSION_A, "again", true))).rejects.toMatchObject(
      { code: "SESSION_DELETED" },
    );
    store = await reopen(store);
    expect(await collect(store)).toEqual([
      { sessionId: SESSION_B, records: [expect.anything()] },
      { sessionId: SESSION_A, records: [] },
    ]);
    expect(await store.tombstones()).toEqual([SESSION_A]);
    expect(await store.isDeleted(SESSION_A)).toBe(true);
    expect(await store.isDeleted(SESSION_B)).toBe(false);
    await expect(store.append(SESSION_A, incoming(SESSION_A, "again", true))).rejects.toMatchObject(
      { code: "SESSION_DELETED" },
    );
    await store.delete(SESSION_B);
    store = await reopen(store);
    expect(await store.tombstones()).toEqual([SESSION_A, SESSION_B]);
  });

  it("cuts a torn tombstone list and refuses one damaged in the middle", async () => {
    let store = open();
    const ids = [SESSION_A, SESSION_B, "third-session-id-xxxxxxxx"];
    for (const id of ids) await store.delete(id);
    await store.close();
    const path = join(root(), "data", "tombstones.log");
    const bytes = await readFile(path);
    await writeFile(path, bytes.subarray(0, bytes.length - 3));
    store = open();
    expect(await store.tombstones()).toEqual(ids.slice(0, 2));
    await store.close();
    const damaged = await readFile(path);
    flip(damaged, 30); // inside the first of the two tombstones
    await writeFile(path, damaged);
    store = open();
    await expect(store.ready()).rejects.toThrow(/tombstone list .* is damaged/);
  });

  it("finishes a deletion that crashed after its tombstone was written", async () => {
    let store = open();
    await store.append(SESSION_A, incoming(SESSION_A, "a0", true));
    await store.close();
    const saved = await readFile(logPath(SESSION_A));
    store = open();
    await store.delete(SESSION_A);
    await store.close();
    await writeFile(logPath(SESSION_A), saved); // as if the unlink never happened
    store = open();
    expect(await collect(store)).toEqual([{ sessionId: SESSION_A, records: [] }]);
    await expect(stat(logPath(SESSION_A))).rejects.toMatchObject({ code: "ENOENT" });
  });
});
