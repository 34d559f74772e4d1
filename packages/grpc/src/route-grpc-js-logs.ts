import { format } from "node:util";
import { setLogger } from "@grpc/grpc-js";
import type { RuntimeLogger } from "@macp/core";

/**
 * Sends @grpc/grpc-js's own log lines (by default printed to stderr with
 * console.error) to `logger` as warnings. grpc-js has one process-wide
 * logger, so this affects every grpc-js server and client in the process:
 * call it from the application, not from a library.
 */
export function routeGrpcJsLogs(logger: Pick<RuntimeLogger, "warn">): void {
  const warn = (...args: unknown[]): void => logger.warn(format(...args), { component: "grpc-js" });
  setLogger({ error: warn, info: warn, debug: warn });
}
