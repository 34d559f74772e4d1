// What the Fastify and Express examples share: an in-memory runtime with
// dev-mode authentication and the timer driver that expires its sessions.

import { createAuthenticator } from "@macp/auth";
import type { MacpRoutesOptions } from "@macp/connect";
import { startTimerDriver } from "@macp/connect/node";
import { type Clock, createMemoryStore, createRuntime, type MacpRuntime } from "@macp/core";

export interface EmbeddedRuntime {
  readonly runtime: MacpRuntime;
  /** Options for createMacpRoutes: dev-mode authentication and the runtime's clock. */
  readonly routes: MacpRoutesOptions;
  close(): Promise<void>;
}

/** Options of the example apps. */
export interface ExampleAppOptions {
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Default 8080; 0 picks a free port. */
  readonly port?: number;
}

/** A started example app. */
export interface ExampleApp {
  /** Base URL for Connect clients. */
  readonly url: string;
  close(): Promise<void>;
}

export function createEmbeddedRuntime(): EmbeddedRuntime {
  const clock: Clock = { now: () => Date.now() };
  const runtime = createRuntime({ clock, store: createMemoryStore() });
  // Dev mode: any bearer value is the sender. Fine for an example, never for production.
  const authenticator = createAuthenticator({ devMode: true });
  const timers = startTimerDriver(runtime, { clock });
  return {
    runtime,
    routes: { authenticate: (headers) => authenticator.authenticate(headers), clock },
    async close() {
      await timers.stop();
      authenticator.close();
      await runtime.close();
    },
  };
}

export function urlOf(host: string, port: number, scheme = "http"): string {
  return `${scheme}://${host.includes(":") ? `[${host}]` : host}:${port}`;
}

/**
 * The options of an example app run from the command line: HOST and PORT
 * override 127.0.0.1 and 8080. An error for a PORT that is not a port number.
 */
export function exampleAppOptionsFromEnv(
  env: Readonly<Record<string, string | undefined>>,
): { readonly options: ExampleAppOptions } | { readonly error: string } {
  const options: { host?: string; port?: number } = {};
  if (env.HOST !== undefined && env.HOST !== "") options.host = env.HOST;
  if (env.PORT !== undefined && env.PORT !== "") {
    const port = Number(env.PORT);
    if (!/^\d+$/.test(env.PORT) || port > 65_535) {
      return { error: `PORT=${JSON.stringify(env.PORT)} is not a port number (0-65535)` };
    }
    options.port = port;
  }
  return { options };
}

/** Runs an example app from the command line until SIGINT or SIGTERM. */
export async function runExampleApp(
  start: (options: ExampleAppOptions) => Promise<ExampleApp>,
  describe: (url: string) => string,
): Promise<void> {
  const read = exampleAppOptionsFromEnv(process.env);
  if ("error" in read) {
    process.stderr.write(`${read.error}\n`);
    process.exitCode = 2;
    return;
  }
  const app = await start(read.options);
  // Handlers first: whoever reads the "listening" line may signal at once.
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      void app.close().then(() => process.exit(0));
    });
  }
  console.log(describe(app.url));
}
