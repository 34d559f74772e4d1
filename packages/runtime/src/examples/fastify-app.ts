// MACP inside a Fastify application: the MACP routes sit next to the app's
// own routes on one HTTP/2 listener, so gRPC, gRPC-Web and Connect clients
// all reach the runtime. Run it with `node dist/examples/fastify-app.js`
// (HOST and PORT override 127.0.0.1:8080).

import type { AddressInfo } from "node:net";
import { pathToFileURL } from "node:url";
import { fastifyConnectPlugin } from "@connectrpc/connect-fastify";
import { createMacpRoutes } from "@macp/connect";
import { fastify } from "fastify";
import {
  createEmbeddedRuntime,
  type ExampleApp,
  type ExampleAppOptions,
  runExampleApp,
  urlOf,
} from "./embedded.js";

export async function startFastifyApp(options: ExampleAppOptions = {}): Promise<ExampleApp> {
  const host = options.host ?? "127.0.0.1";
  const embedded = createEmbeddedRuntime();
  // HTTP/2 without TLS (h2c): what gRPC clients use in development.
  const app = fastify({ http2: true });

  app.get("/healthz", async () => ({ status: "ok" }));
  await app.register(fastifyConnectPlugin, {
    routes: createMacpRoutes(embedded.runtime, embedded.routes),
  });
  try {
    await app.listen({ host, port: options.port ?? 8080 });
  } catch (error) {
    await embedded.close();
    throw error;
  }
  const { port } = app.server.address() as AddressInfo;
  return {
    url: urlOf(host, port),
    async close() {
      await app.close();
      await embedded.close();
    },
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await runExampleApp(
    startFastifyApp,
    (url) => `Fastify with MACP listening on ${url} (dev-mode auth, in-memory)`,
  );
}
