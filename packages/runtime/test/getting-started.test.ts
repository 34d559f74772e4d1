// docs/getting-started.md's first-session script, saved and run exactly as the
// page says (`npx tsx first-session.mts` in the repository), on the Node
// running the tests: the page promises Node 20.

import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningRuntime } from "../src/start-runtime.js";
import { npmEnv, REPO_DIR, startTestRuntime } from "./helpers.js";

const run = promisify(execFile);
const npx = process.platform === "win32" ? "npx.cmd" : "npx";

/** The ```ts blocks of the "Your first session" section, joined: the page's one script. */
async function firstSessionScript(): Promise<string> {
  const page = await readFile(join(REPO_DIR, "docs", "getting-started.md"), "utf8");
  const section = page.slice(
    page.indexOf("## Your first session"),
    page.indexOf("## Authentication in production"),
  );
  return [...section.matchAll(/```ts\n([\s\S]*?)```/g)].map((match) => match[1]).join("\n");
}

describe("the getting-started script", () => {
  let server: RunningRuntime;
  let dir: string;
  beforeAll(async () => {
    server = await startTestRuntime();
    // Inside the repository, as the page says, so the imports resolve from the workspace.
    await mkdir(join(REPO_DIR, ".vitest-tmp"), { recursive: true });
    dir = await mkdtemp(join(REPO_DIR, ".vitest-tmp", "getting-started-"));
    await writeFile(join(dir, "first-session.mts"), await firstSessionScript());
  });
  afterAll(async () => {
    await server?.close({ drainMs: 0 });
    await rm(dir, { recursive: true, force: true });
  });

  it("runs with `npx tsx first-session.mts` and prints what the page says", async () => {
    const { stdout } = await run(npx, ["tsx", "first-session.mts"], {
      cwd: dir,
      // npm_config_yes=false: use the workspace's tsx, never one fetched on the fly.
      env: { ...npmEnv(), npm_config_yes: "false", MACP_ENDPOINT: server.url },
    });
    const lines = stdout.trim().split("\n");
    expect(lines[0]).toBe("1.0");
    expect(stdout).toContain("'macp.mode.decision.v1'");
    expect(lines.slice(-4)).toEqual(["true 1", "true true", "2", "2 agent://coordinator"]);
  }, 120_000);

  it("type-checks under the repository's compiler settings", async () => {
    await writeFile(
      join(dir, "tsconfig.json"),
      JSON.stringify({
        extends: "../../tsconfig.base.json",
        compilerOptions: { noEmit: true, composite: false, types: ["node"] },
        files: ["first-session.mts"],
      }),
    );
    await run(join(REPO_DIR, "node_modules", ".bin", "tsc"), ["-p", dir], { cwd: REPO_DIR });
  }, 120_000);
});
