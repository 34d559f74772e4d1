import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { openFileStore } from "../src/index.js";
import { capture } from "../src/testing/store-harness.js";

// The data directory lock across real processes: a store held open by another
// process refuses a second one, naming the holder's pid, and a holder killed with
// SIGKILL does not block the next start.

const packageDir = fileURLToPath(new URL("..", import.meta.url));
const repoRoot = resolve(packageDir, "../..");
const holderScript = join(packageDir, "test", "fixtures", "lock-holder.mjs");

interface Holder {
  readonly child: ChildProcess;
  readonly exited: Promise<number | string>;
  output(): string;
}

const children: ChildProcess[] = [];

function startHolder(directory: string): Holder {
  const child = spawn(process.execPath, [holderScript, directory], {
    cwd: packageDir,
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let output = "";
  child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
    output += chunk;
  });
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    output += chunk;
  });
  const exited = new Promise<number | string>((done) => {
    child.once("exit", (code, signal) => done(code ?? signal ?? "unknown"));
  });
  return { child, exited, output: () => output };
}

/** Resolves once the holder has the store open; rejects if it exits first. */
function ready(holder: Holder): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (holder.output().includes("ready")) resolve();
    };
    holder.child.stdout?.on("data", check);
    check();
    void holder.exited.then((code) =>
      reject(new Error(`holder exited (${code}): ${holder.output()}`)),
    );
  });
}

let directory: string;

beforeAll(() => {
  // The holder runs the built package, not the sources vitest maps @macp/* to.
  execFileSync(
    process.execPath,
    [join(repoRoot, "node_modules", "typescript", "bin", "tsc"), "-b", "packages/store-file"],
    { cwd: repoRoot, stdio: "pipe", timeout: 120_000 },
  );
}, 120_000);

beforeEach(async () => {
  directory = join(await mkdtemp(join(tmpdir(), "macp-store-lock-")), "data");
});

afterEach(async () => {
  await rm(resolve(directory, ".."), { recursive: true, force: true });
});

afterAll(() => {
  for (const child of children) child.kill("SIGKILL");
});

describe("data directory lock across processes", () => {
  it("refuses a second store while another process holds the directory, naming its pid", async () => {
    const holder = startHolder(directory);
    await ready(holder);
    const refused = await openFileStore({ directory, logger: capture() }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refused).toMatchObject({
      code: "DIRECTORY_LOCKED",
      message: expect.stringContaining(`data directory ${directory} is in use`),
    });
    expect((refused as Error).message).toContain(`pid ${holder.child.pid}`);

    // Both ways round: the holder's directory is still its own afterwards.
    const second = startHolder(directory);
    expect(await second.exited).toBe(1);
    expect(second.output()).toContain(`pid ${holder.child.pid}`);

    holder.child.kill("SIGTERM");
    expect(await holder.exited).toBe(0);
    expect(existsSync(join(directory, "macp-store.lock"))).toBe(false);
    const store = await openFileStore({ directory, logger: capture() });
    await store.close();
  });

  it("starts after the holder was killed with SIGKILL, taking over its lock", async () => {
    const holder = startHolder(directory);
    await ready(holder);
    holder.child.kill("SIGKILL");
    await holder.exited;
    expect(existsSync(join(directory, "macp-store.lock"))).toBe(true);

    const logger = capture();
    const store = await openFileStore({ directory, logger });
    expect(
      logger.lines.some(
        (line) => line.includes("took over the lock") && line.includes(`"pid":${holder.child.pid}`),
      ),
    ).toBe(true);
    // Now this process holds it: another process is refused.
    const other = startHolder(directory);
    expect(await other.exited).toBe(1);
    expect(other.output()).toContain(`pid ${process.pid}`);
    await store.close();
  });
});
