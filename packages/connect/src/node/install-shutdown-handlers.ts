import type { RuntimeLogger } from "@macp/core";
import type { MacpServer } from "./start-macp-server.js";

export interface ShutdownHandlerOptions {
  /**
   * The whole budget from the signal to `exit`, in ms. The server drains for
   * this long minus a reserve of up to 1 s for closing the runtime (flushing
   * the store); if shutdown has not finished when the budget runs out the
   * process exits with 1. Default 5000.
   */
  readonly drainMs?: number;
  /** Ends the process. Default `process.exit`; tests pass a recorder. */
  readonly exit?: (code: number) => void;
  /** Where the shutdown is reported. Default: console. */
  readonly logger?: Pick<RuntimeLogger, "info" | "error">;
}

const SIGNALS = ["SIGTERM", "SIGINT"] as const;

/**
 * On SIGTERM or SIGINT, closes `server` gracefully and exits 0; exits 1 if
 * closing fails or takes longer than `drainMs`, or on a second signal (the
 * operator insisting). SIGTERM matters: it is what `docker stop` and
 * Kubernetes send. Returns the function that removes the handlers.
 */
export function installShutdownHandlers(
  server: Pick<MacpServer, "close">,
  options: ShutdownHandlerOptions = {},
): () => void {
  const drainMs = options.drainMs ?? 5000;
  const exit = options.exit ?? ((code: number) => process.exit(code));
  const logger = options.logger ?? console;
  let shuttingDown = false;

  const onSignal = (signal: NodeJS.Signals): void => {
    if (shuttingDown) {
      logger.error(`received ${signal} again during shutdown; exiting now`);
      exit(1);
      return;
    }
    shuttingDown = true;
    // Log the drain calls in flight get, not the whole budget: operators set the former.
    const reserve = Math.min(1000, drainMs / 2);
    const callDrainMs = Math.max(0, drainMs - reserve);
    logger.info(`received ${signal}; shutting down`, {
      drainMs: callDrainMs,
      exitWithinMs: drainMs,
    });
    const force = setTimeout(() => {
      logger.error(`shutdown did not finish within ${drainMs} ms; exiting`);
      exit(1);
    }, drainMs);
    force.unref();
    server.close({ drainMs: callDrainMs }).then(
      () => {
        clearTimeout(force);
        logger.info("shutdown complete");
        exit(0);
      },
      (error: unknown) => {
        clearTimeout(force);
        logger.error("shutdown failed", { error });
        exit(1);
      },
    );
  };

  for (const signal of SIGNALS) process.on(signal, onSignal);
  return () => {
    for (const signal of SIGNALS) process.off(signal, onSignal);
  };
}
