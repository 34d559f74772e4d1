// Shared test plumbing: in-process servers on 127.0.0.1:0 and child processes
// of the built executable.

import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Environment, loadConfig } from "../src/config.js";
import { createLogger } from "../src/logger.js";
import { type RunningRuntime, startRuntime } from "../src/start-runtime.js";

export const PACKAGE_DIR = fileURLToPath(new URL("..", import.meta.url));
export const REPO_DIR = fileURLToPath(new URL("../../..", import.meta.url));
export const MAIN_JS = join(PACKAGE_DIR, "dist", "main.js");
export const RUN_JS = join(PACKAGE_DIR, "dist", "examples", "run.js");

/**
 * Brings packages/runtime/dist up to date for tests that run the built files:
 * `npm test` builds first, but a direct vitest run may find dist stale.
 */
export function buildRuntime(): void {
  execFileSync(join(REPO_DIR, "node_modules", ".bin", "tsc"), ["-b", "packages/runtime"], {
    cwd: REPO_DIR,
    stdio: "pipe",
  });
}

/**
 * The environment of a dev server on a free port: insecure, in memory, quiet.
 * An override of `undefined` removes that variable.
 */
export function devEnv(overrides: Environment = {}): Record<string, string> {
  const merged: Environment = {
    MACP_ALLOW_INSECURE: "1",
    MACP_MEMORY_ONLY: "1",
    MACP_BIND_ADDR: "127.0.0.1:0",
    MACP_LOG_LEVEL: "silent",
    ...overrides,
  };
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(merged)) if (value !== undefined) env[name] = value;
  return env;
}

/**
 * The runtime's two gRPC listeners: @grpc/grpc-js at MACP_BIND_ADDR (`url`)
 * and Connect on node:http2 at MACP_HTTP_BIND_ADDR (`httpUrl`). The suites
 * that check what a gRPC client observes run once on each.
 */
export const LISTENERS: readonly (readonly [string, (server: RunningRuntime) => string])[] = [
  ["@grpc/grpc-js at MACP_BIND_ADDR", (server) => server.url],
  ["Connect at MACP_HTTP_BIND_ADDR", (server) => httpUrlOf(server)],
];

/** The Connect listener's URL (MACP_HTTP_BIND_ADDR): browsers, curl, the inspector. */
export function httpUrlOf(server: RunningRuntime): string {
  if (server.httpUrl === undefined) throw new Error("MACP_HTTP_BIND_ADDR is off");
  return server.httpUrl;
}

/** Starts the runtime server in this process with `devEnv(overrides)`. */
export async function startTestRuntime(overrides: Environment = {}): Promise<RunningRuntime> {
  const loaded = loadConfig(devEnv(overrides));
  if (!loaded.ok) throw new Error(loaded.errors.map((e) => e.message).join("\n"));
  return startRuntime(loaded.config, { logger: createLogger("silent") });
}

export async function tempDir(prefix: string): Promise<{ path: string; remove(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), `macp-runtime-${prefix}-`));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

/**
 * The environment for a child npm or npx: this process's, without the npm_*
 * settings a parent npm (under `npm test`) exports, which the child would
 * otherwise take for its own configuration.
 */
export function npmEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(process.env).filter(
      ([name]) =>
        !name.startsWith("npm_") || name === "npm_config_cache" || name === "npm_config_registry",
    ),
  );
}

/** A child process with its output collected. */
export interface Spawned {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (or the signal name) when the process ends. */
  readonly exited: Promise<number | string>;
  /** Resolves once stdout contains `text`; rejects if the process exits first or `ms` pass. */
  waitForOutput(text: string, ms?: number): Promise<void>;
}

/**
 * Runs a built script of this package with exactly `env` (plus PATH and HOME), so the
 * developer's own MACP_* variables cannot leak into a test.
 */
export function spawnNode(script: string, args: readonly string[], env: Environment): Spawned {
  return spawnCommand(process.execPath, [script, ...args], { cwd: PACKAGE_DIR, env });
}

/** Runs `command` in `cwd` with exactly `env` (plus PATH and HOME), collecting its output. */
export function spawnCommand(
  command: string,
  args: readonly string[],
  options: { readonly cwd: string; readonly env: Environment },
): Spawned {
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  const waiters: { text: string; resolve: () => void }[] = [];
  child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
    out += chunk;
    for (const waiter of [...waiters]) {
      if (out.includes(waiter.text)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    }
  });
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    err += chunk;
  });
  const exited = new Promise<number | string>((resolve) => {
    child.once("exit", (code, signal) => resolve(code ?? signal ?? "unknown"));
  });
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitForOutput(text, ms = 10_000) {
      if (out.includes(text)) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no '${text}' within ${ms} ms; stdout: ${out}; stderr: ${err}`)),
          ms,
        );
        waiters.push({
          text,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        });
        void exited.then((code) => {
          clearTimeout(timer);
          reject(new Error(`exited (${code}) before '${text}'; stdout: ${out}; stderr: ${err}`));
        });
      });
    },
  };
}

/** The listening URL from a `listening` log line of the built server. */
export function listeningUrl(stdout: string): string {
  for (const line of stdout.split("\n")) {
    if (!line.includes("listening")) continue;
    const parsed: unknown = JSON.parse(line);
    if (typeof parsed === "object" && parsed !== null && "url" in parsed) {
      return String(parsed.url);
    }
  }
  throw new Error(`no listening line in: ${stdout}`);
}
