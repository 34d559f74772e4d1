// Logs are pino JSON lines on stdout (where the reference's tracing output
// goes too), so a container runtime or journald collects them unchanged.

import type { RuntimeLogger } from "@macp/core";
import { type DestinationStream, type Logger, pino } from "pino";
import type { LogLevel } from "./config.js";

export type { Logger } from "pino";

/**
 * A pino logger named `macp-runtime` at `level`. `destination` defaults to
 * stdout; synchronous writes keep the last lines before an exit.
 */
export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  return pino(
    { name: "macp-runtime", level },
    destination ?? pino.destination({ dest: 1, sync: true }),
  );
}

/** Adapts pino to the core's logger port (message first, fields second). */
export function runtimeLoggerFrom(logger: Logger): RuntimeLogger {
  return {
    info: (message, fields) => logger.info(fields ?? {}, message),
    warn: (message, fields) => logger.warn(fields ?? {}, message),
    error: (message, fields) => logger.error(fields ?? {}, message),
  };
}
