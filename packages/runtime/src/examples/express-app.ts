// MACP inside an Express application. Express speaks HTTP/1.1, so this
// serves the Connect and gRPC-Web protocols (browsers, curl, Connect clients);
// plain gRPC needs HTTP/2 trailers and therefore the Fastify example or the
// runtime server. Run it with `node dist/examples/express-app.js`
// (HOST and PORT override 127.0.0.1:8080).

import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { pathToFileURL } from "node:url";
import { expressConnectMiddleware } from "@connectrpc/connect-express";
import { createMacpRoutes } from "@macp/connect";
import express from "express";
import {
  createEmbeddedRuntime,
  type ExampleApp,
  type ExampleAppOptions,
  runExampleApp,
  urlOf,
} from "./embedded.js";

export async function startExpressApp(options: ExampleAppOptions = {}): Promise<ExampleApp> {
  const host = options.host ?? "127.0.0.1";
  const embedded = createEmbeddedRuntime();
  const app = express();

  app.get("/healthz", (_request, response) => {
    response.json({ status: "ok" });
  });
  app.use(
    expressConnectMiddleware({ routes: createMacpRoutes(embedded.runtime, embedded.routes) }),
  );

  let server: Server;
  try {
    server = await new Promise<Server>((resolve, reject) => {
      const listening = app.listen(options.port ?? 8080, host, (error?: Error) => {
        if (error === undefined) resolve(listening);
        else reject(error);
      });
    });
  } catch (error) {
    await embedded.close();
    throw error;
  }
  const { port } = server.address() as AddressInfo;
  return {
    url: urlOf(host, port),
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await embedded.close();
    },
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await runExampleApp(
    startExpressApp,
    (url) => `Express with MACP listening on ${url} (Connect and gRPC-Web; dev-mode auth)`,
  );
}
