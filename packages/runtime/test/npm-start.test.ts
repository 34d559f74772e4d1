// `npm start` as an operator or a process manager runs it: a SIGTERM sent to
// the npm process alone (not to its process group) must stop the server too.

import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { devEnv, REPO_DIR, type Spawned, spawnCommand } from "./helpers.js";

const npm = process.platform === "win32" ? "npm.cmd" : "npm";

/** [pid, parent pid] of every process: from /proc on Linux (no procps needed), else `ps`. */
function processTable(): [number, number][] {
  if (existsSync("/proc/self/stat")) {
    return readdirSync("/proc")
      .filter((name) => /^\d+$/.test(name))
      .flatMap((pid): [number, number][] => {
        try {
          // The command name (field 2) may hold spaces; the parent pid follows its ")".
          const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
          const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
          return [[Number(pid), ppid]];
        } catch {
          return []; // ended while we looked
        }
      });
  }
  return execFileSync("ps", ["-A", "-o", "pid=,ppid="], { encoding: "utf8" })
    .trim()
    .split("\n")
    .map((line) => line.trim().split(/\s+/).map(Number) as [number, number]);
}

/** Every process below `root`. */
function descendants(root: number): number[] {
  const table = processTable();
  const found: number[] = [];
  const walk = (parent: number) => {
    for (const [pid, ppid] of table) {
      if (ppid === parent) {
        found.push(pid);
        walk(pid);
      }
    }
  };
  walk(root);
  return found;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Resolves whether `port` on 127.0.0.1 can be bound again. */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once("error", () => resolve(false));
    probe.listen(port, "127.0.0.1", () => probe.close(() => resolve(true)));
  });
}

/** The fields of the server's JSON log line whose msg contains `text`. */
function logLine(stdout: string, text: string): Record<string, unknown> {
  for (const line of stdout.split("\n")) {
    if (!line.startsWith("{")) continue;
    const parsed = JSON.parse(line) as Record<string, unknown>;
    if (String(parsed.msg).includes(text)) return parsed;
  }
  throw new Error(`no log line with '${text}' in: ${stdout}`);
}

describe("npm start", () => {
  let started: Spawned | undefined;
  let orphans: number[] = [];
  afterEach(() => {
    // Only if the test failed: leave no server behind.
    started?.child.kill("SIGKILL");
    for (const pid of orphans) if (alive(pid)) process.kill(pid, "SIGKILL");
  });

  it("serves the inspector and curl on the HTTP listener, and stops on a SIGTERM to the npm process only", async () => {
    started = spawnCommand(npm, ["start"], {
      cwd: REPO_DIR,
      env: devEnv({ MACP_LOG_LEVEL: "info", MACP_INSPECTOR: "1" }),
    });
    // The prestart build may have work to do when vitest runs without `npm test`.
    await started.waitForOutput("listening", 120_000);
    const listening = logLine(started.stdout(), "listening");
    const port = Number(String(listening.address).split(":").pop());
    orphans = descendants(started.child.pid ?? -1);
    expect(orphans).toContain(listening.pid);

    // The README's browser claims: the inspector page and a curl-style HTTP/1.1
    // Connect call, both on the HTTP listener the log line names.
    const httpUrl = String(listening.httpUrl);
    expect(listening.inspector).toBe(`${httpUrl}/inspector/`);
    const page = await fetch(`${httpUrl}/inspector/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("<html");
    const initialized = await fetch(`${httpUrl}/macp.v1.MACPRuntimeService/Initialize`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ supportedProtocolVersions: ["1.0"] }),
    });
    expect(await initialized.json()).toMatchObject({ selectedProtocolVersion: "1.0" });

    started.child.kill("SIGTERM");
    expect(await started.exited).toBe(0);

    // The documented MACP_SHUTDOWN_DRAIN_SECS default, not the drain plus the close reserve.
    expect(logLine(started.stdout(), "shutting down").drainMs).toBe(10_000);
    expect(orphans.filter(alive)).toEqual([]);
    expect(await portFree(port)).toBe(true);
  }, 180_000);
});
