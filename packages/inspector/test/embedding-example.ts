// The README's example: the MACP routes, the inspector's service and its page
// on a host's own HTTP/1.1 server.

import { createServer, type Server } from "node:http";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { createMacpRoutes } from "@macp/connect";
import { createDevIdentity, createRuntime } from "@macp/core";
import { createInspectorPage, createInspectorRoutes, createRefusalLog } from "@macp/inspector";

export function startInspectedServer(port = 8080): Promise<Server> {
  const clock = { now: () => Date.now() };
  const authenticate = (headers: Headers) =>
    createDevIdentity(headers.get("authorization")?.replace(/^Bearer /, "") ?? "anonymous");
  const refusals = createRefusalLog({ clock });
  const runtime = createRuntime({ clock, observer: refusals.observer });
  const page = createInspectorPage();

  const handler = connectNodeAdapter({
    routes: (router) => {
      createMacpRoutes(runtime, { authenticate, clock })(router);
      createInspectorRoutes(runtime, { authenticate, refusals, clock })(router);
    },
    fallback: (request, response) => {
      if (page(request, response)) return;
      response.writeHead(404);
      response.end();
    },
  });
  const server = createServer(handler);
  // Open http://127.0.0.1:8080/inspector/
  return new Promise((resolve) => server.listen(port, "127.0.0.1", () => resolve(server)));
}
