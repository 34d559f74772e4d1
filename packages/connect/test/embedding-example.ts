// The example of docs/guides/embedding.md, verbatim below this comment;
// embedding.test.ts runs it and checks that the two stay the same.

import * as http2 from "node:http2";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { createAuthenticator } from "@macp/auth";
import { createHealthState, createMacpRoutes } from "@macp/connect";
import { startTimerDriver, useSpecGrpcMessageEncoding } from "@macp/connect/node";
import { type Clock, createRuntime } from "@macp/core";
import { installStreamTables } from "@macp/node-http2";
import { openFileStore } from "@macp/store-file";

// Your existing request handler; MACP takes only its own paths.
function existingHandler(request: http2.Http2ServerRequest, response: http2.Http2ServerResponse) {
  if (request.url === "/status") {
    response.writeHead(200, { "content-type": "application/json" });
    response.end(JSON.stringify({ ok: true }));
    return;
  }
  response.writeHead(404);
  response.end();
}

export async function startService(options: { port: number; dataDir: string }) {
  // 1. The runtime, with the one clock everything shares.
  const clock: Clock = { now: () => Date.now() };
  const store = await openFileStore({ directory: options.dataDir });
  const runtime = createRuntime({ clock, store });
  const report = await runtime.recover(); // rebuild sessions before serving
  if (report.quarantined.length > 0) console.warn("quarantined sessions", report.quarantined);

  // 2. Who is calling. Dev mode accepts any bearer value as the caller; use
  //    authConfigFromEnv(process.env), static tokens or JWT in production.
  const authenticator = createAuthenticator({ devMode: true });

  // 3. The routes, next to the existing handler: RPC paths start with the service name.
  const health = createHealthState();
  const shutdown = new AbortController();
  const macp = connectNodeAdapter({
    routes: createMacpRoutes(runtime, {
      authenticate: (headers) => authenticator.authenticate(headers),
      clock,
      health,
      shutdownSignal: shutdown.signal,
    }),
  });
  const server = http2.createServer((request, response) => {
    const path = request.url ?? "";
    if (!path.startsWith("/macp.v1.") && !path.startsWith("/grpc.health.v1.")) {
      existingHandler(request, response);
      return;
    }
    useSpecGrpcMessageEncoding(response);
    macp(request, response);
  });
  // Each connection's per-call garbage dies young (see @macp/node-http2).
  installStreamTables(server);
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (session: http2.ServerHttp2Session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });
  await new Promise<void>((resolve) => server.listen(options.port, "127.0.0.1", resolve));

  // 4. Time: TTL expiry, suspension caps, eviction of finished sessions.
  const timers = startTimerDriver(runtime, { clock });

  return {
    server,
    async close(drainMs = 5000) {
      health.setServing(false); // health probes stop routing new work here
      shutdown.abort(); // open streams end with UNAVAILABLE; clients reconnect elsewhere
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const session of sessions) session.close(); // GOAWAY: calls in flight finish
      const cut = setTimeout(() => {
        for (const session of sessions) session.destroy();
      }, drainMs);
      await closed; // every HTTP/2 session has ended
      clearTimeout(cut);
      await timers.stop();
      await runtime.close(); // ends what is left of the streams, closes the store
      authenticator.close();
    },
  };
}
