// A SIGTERM that lands while the executable is still starting must stop it
// cleanly, not kill it: the handlers used to be installed only after the
// "listening" line. Start-up is held open deterministically by a policy file
// that is a FIFO: reading it blocks until the test writes the policy.

import { execFileSync } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { buildRuntime, devEnv, MAIN_JS, type Spawned, spawnNode, tempDir } from "./helpers.js";

beforeAll(buildRuntime, 120_000);

const children: Spawned[] = [];
const dirs: { remove(): Promise<void> }[] = [];
afterAll(async () => {
  for (const child of children) child.child.kill("SIGKILL");
  await Promise.all(dirs.map((dir) => dir.remove()));
});

const POLICY = JSON.stringify({
  policy_id: "policy.test.held",
  mode: "macp.mode.decision.v1",
  description: "initiator only",
  rules: { commitment: { authority: "initiator_only" } },
  schema_version: 1,
});

/** Starts the executable with start-up blocked on reading `held.json`; resolves once it has logged. */
async function startHeld(): Promise<{ child: Spawned; release: () => Promise<void> }> {
  const dir = await tempDir("held-policies");
  dirs.push(dir);
  const fifo = join(dir.path, "held.json");
  execFileSync("mkfifo", [fifo]);
  const child = spawnNode(
    MAIN_JS,
    [],
    devEnv({ MACP_POLICIES_DIR: dir.path, MACP_LOG_LEVEL: "info" }),
  );
  children.push(child);
  // Configuration warnings are logged as start-up begins, before the policies are read.
  await child.waitForOutput("MACP_ALLOW_INSECURE");
  return { child, release: () => writeFile(fifo, POLICY) };
}

/** What the process did after a signal: exited (with its code or signal), or logged that it is stopping. */
function reaction(child: Spawned, signal: NodeJS.Signals): Promise<string> {
  return Promise.race([
    child.exited.then((code) => `exited: ${code}`),
    child.waitForOutput(`received ${signal}`).then(
      () => "stopping",
      () => "exited",
    ),
  ]);
}

it("a SIGTERM during start-up lets start-up finish, closes the runtime and exits 0", async () => {
  const { child, release } = await startHeld();
  child.child.kill("SIGTERM");
  expect(await reaction(child, "SIGTERM")).toBe("stopping");
  await release();
  expect(await child.exited).toBe(0);
  expect(child.stdout()).toContain("state persisted, goodbye");
  expect(child.stderr()).toBe("");
});

it("a second signal during start-up exits 1 without waiting for start-up", async () => {
  const { child, release } = await startHeld();
  child.child.kill("SIGINT");
  expect(await reaction(child, "SIGINT")).toBe("stopping");
  child.child.kill("SIGINT");
  await child.waitForOutput("received SIGINT again");
  // Exiting waits for the worker thread blocked on the FIFO, so it is unblocked.
  await release();
  expect(await child.exited).toBe(1);
  expect(child.stdout()).toContain("received SIGINT again during shutdown");
  expect(child.stdout()).not.toContain("listening");
});
