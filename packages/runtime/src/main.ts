#!/usr/bin/env node
// macp-runtime: the MACP server, configured entirely from MACP_* environment
// variables (see docs/reference/env-vars.md; `--help` lists them). A refused
// start prints one line per problem on stderr, each naming the variable, and
// exits 1.

import cluster from "node:cluster";
import { parseArgs } from "node:util";
import { installShutdownHandlers } from "@macp/connect/node";
import { loadConfig } from "./config.js";
import { helpText } from "./help-text.js";
import { createLogger, runtimeLoggerFrom } from "./logger.js";
import { type RunningRuntime, StartupError, startRuntime } from "./start-runtime.js";
import { RUNTIME_VERSION } from "./version.js";
import { runWorkerPool } from "./worker-pool.js";

// Time left to flush the store after the drain, before a hung shutdown is forced.
const CLOSE_RESERVE_MS = 1000;

function refuse(message: string): void {
  process.stderr.write(`macp-runtime: ${message}\n`);
}

/** Answers --help and --version without reading the environment; undefined means serve. */
function answerFlags(args: readonly string[]): number | undefined {
  let values: { help?: boolean; version?: boolean };
  try {
    ({ values } = parseArgs({
      args: [...args],
      options: {
        help: { type: "boolean", short: "h" },
        version: { type: "boolean", short: "v" },
      },
    }));
  } catch (error) {
    refuse(`${error instanceof Error ? error.message : String(error)}; see macp-runtime --help`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(helpText(RUNTIME_VERSION));
    return 0;
  }
  if (values.version) {
    process.stdout.write(`${RUNTIME_VERSION}\n`);
    return 0;
  }
  return undefined;
}

async function main(): Promise<number> {
  const answered = answerFlags(process.argv.slice(2));
  if (answered !== undefined) return answered;
  const loaded = loadConfig(process.env);
  if (!loaded.ok) {
    for (const error of loaded.errors) refuse(error.message);
    return 1;
  }
  const { config } = loaded;
  if (config.workers > 1 && cluster.isPrimary) {
    return runWorkerPool(
      config.workers,
      (message) => process.stderr.write(`macp-runtime: ${message}\n`),
      config.metrics === undefined
        ? undefined
        : { address: config.metrics, logger: createLogger(config.logLevel) },
    );
  }
  // The signal handlers go in before start-up does anything (startRuntime logs
  // the configuration warnings before it first yields), so a SIGTERM at any
  // later point is a clean stop: one during start-up lets it finish and closes
  // the runtime at once (exit 0), or exits 1 if start-up fails. A handler runs
  // on a later tick than this one, so `starting` is set by then.
  const logger = createLogger(config.logLevel);
  let starting: Promise<RunningRuntime> | undefined;
  installShutdownHandlers(
    {
      close: async ({ drainMs } = {}) => {
        const running = await starting;
        await running?.close({ drainMs });
      },
    },
    { drainMs: config.shutdownDrainMs + CLOSE_RESERVE_MS, logger: runtimeLoggerFrom(logger) },
  );
  starting = startRuntime(config, { logger });
  try {
    await starting;
  } catch (error) {
    refuse(
      error instanceof StartupError
        ? error.message
        : `start-up failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
    );
    return 1;
  }
  return 0;
}

const code = await main();
if (code !== 0) process.exit(code);
