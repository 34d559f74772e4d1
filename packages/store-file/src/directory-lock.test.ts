import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, readlink, rm, utimes, writeFile } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { acquireDirectoryLock, LOCK_FILE, LOCK_STALE_MS } from "./directory-lock.js";
import { capture } from "./testing/store-harness.js";

// How the lock judges a lock file it finds. The lock across real processes
// (SIGKILL included) is tested in test/directory-lock.test.ts.

const linux = existsSync("/proc/self/stat");

async function startTimeOf(pid: number): Promise<string> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? "";
}

let directory: string;

beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), "macp-lock-"));
});

afterEach(async () => {
  await rm(directory, { recursive: true, force: true });
});

/** A lock file as another process of this machine would have written it. */
async function writeLock(fields: Record<string, unknown>): Promise<void> {
  const holder = {
    pid: process.ppid,
    hostname: hostname(),
    bootId: linux ? (await readFile("/proc/sys/kernel/random/boot_id", "utf8")).trim() : undefined,
    pidNamespace: linux ? await readlink("/proc/self/ns/pid") : undefined,
    startTime: linux ? await startTimeOf(process.ppid) : undefined,
    token: "0123456789abcdef",
    acquiredAt: "2026-01-01T00:00:00.000Z",
    ...fields,
  };
  await writeFile(join(directory, LOCK_FILE), JSON.stringify(holder));
}

async function refusal(): Promise<unknown> {
  return acquireDirectoryLock(directory, capture()).then(
    () => undefined,
    (error: unknown) => error,
  );
}

describe("directory lock", () => {
  it("takes a free directory, and removes only its own lock on release", async () => {
    const logger = capture();
    const lock = await acquireDirectoryLock(directory, logger);
    const held = JSON.parse(await readFile(join(directory, LOCK_FILE), "utf8"));
    expect(held).toMatchObject({ pid: process.pid, hostname: hostname() });
    await lock?.release();
    expect(existsSync(join(directory, LOCK_FILE))).toBe(false);

    const again = await acquireDirectoryLock(directory, logger);
    await writeLock({ token: "someone-else" });
    await again?.release();
    expect(existsSync(join(directory, LOCK_FILE))).toBe(true);
    expect(logger.lines.some((line) => line.includes("no longer this process's"))).toBe(true);
  });

  it("refuses while the holder runs, naming the directory and its pid", async () => {
    await writeLock({});
    const refused = await refusal();
    expect(refused).toMatchObject({ code: "DIRECTORY_LOCKED" });
    expect((refused as Error).message).toContain(`data directory ${directory} is in use`);
    expect((refused as Error).message).toContain(`pid ${process.ppid}`);
    expect((refused as Error).message).toContain(join(directory, LOCK_FILE));
  });

  // A lock file whose holder is gone, and the log line that says why it was taken over.
  const abandoned: [string, Record<string, unknown>, string, boolean][] = [
    ["whose pid now belongs to another process", { startTime: "1" }, "belongs to another", linux],
    // Pids are bounded by pid_max (at most 2^22 on Linux), so this one cannot run.
    ["whose pid is not running", { pid: 2 ** 30 }, "is not running", true],
    // Not taken by a store of this process: left by an earlier process with this pid.
    ["naming this process", { pid: process.pid, token: "earlier" }, "this process's pid", true],
    ["of a container that has restarted", { pidNamespace: "pid:[1]" }, "container has", linux],
  ];
  for (const [what, fields, reason, applies] of abandoned) {
    it.runIf(applies)(`takes over a lock ${what}`, async () => {
      await writeLock(fields);
      const logger = capture();
      const lock = await acquireDirectoryLock(directory, logger);
      expect(logger.lines.some((line) => line.includes("took over") && line.includes(reason))).toBe(
        true,
      );
      expect(JSON.parse(await readFile(join(directory, LOCK_FILE), "utf8")).pid).toBe(process.pid);
      await lock?.release();
    });
  }

  it.runIf(linux)(
    "takes over a lock whose holder exited but was not collected (a zombie)",
    async () => {
      // `sleep 0` exits at once, and its parent (exec'd into `sleep 30`) never waits for it.
      const shell = spawn("sh", ["-c", "sleep 0 & echo $!; exec sleep 30"], {
        stdio: ["ignore", "pipe", "ignore"],
      });
      try {
        const [line] = (await once(shell.stdout, "data")) as [Buffer];
        const zombie = Number(line.toString().trim());
        let state = "";
        while (state !== "Z") {
          const stat = await readFile(`/proc/${zombie}/stat`, "utf8");
          state = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0] ?? "";
          await new Promise((done) => setImmediate(done));
        }
        await writeLock({ pid: zombie, startTime: await startTimeOf(zombie) });
        const logger = capture();
        const lock = await acquireDirectoryLock(directory, logger);
        expect(
          logger.lines.some((l) => l.includes("took over") && l.includes("is not running")),
        ).toBe(true);
        await lock?.release();
      } finally {
        shell.kill("SIGKILL");
      }
    },
  );

  it("refuses a lock of another host until its heartbeat has stopped for long enough", async () => {
    await writeLock({ hostname: "elsewhere", bootId: "another-machine" });
    const refused = await refusal();
    expect(refused).toMatchObject({ code: "DIRECTORY_LOCKED" });
    expect((refused as Error).message).toContain("on host elsewhere");
    const old = new Date(Date.now() - LOCK_STALE_MS - 5_000);
    await utimes(join(directory, LOCK_FILE), old, old);
    const logger = capture();
    const lock = await acquireDirectoryLock(directory, logger);
    expect(logger.lines.some((line) => line.includes("not refreshed for"))).toBe(true);
    await lock?.release();
  });

  it("takes over a lock file it cannot parse only once it is old: it may be being written", async () => {
    await writeFile(join(directory, LOCK_FILE), "{not json");
    const refused = await refusal();
    expect(refused).toMatchObject({ code: "DIRECTORY_LOCKED" });
    expect((refused as Error).message).toContain("its lock file cannot be read");
    const old = new Date(Date.now() - LOCK_STALE_MS - 5_000);
    await utimes(join(directory, LOCK_FILE), old, old);
    const lock = await acquireDirectoryLock(directory, capture());
    expect(JSON.parse(await readFile(join(directory, LOCK_FILE), "utf8")).pid).toBe(process.pid);
    await lock?.release();
  });
});
