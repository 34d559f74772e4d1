import { createAuthenticator } from "@macp/auth";
import { startTimerDriver } from "@macp/connect/node";
import { createRuntime } from "@macp/core";
import { startMacpGrpcServer } from "@macp/grpc";

export async function serve(port: number) {
  const clock = { now: () => Date.now() };
  const runtime = createRuntime({ clock }); // in-memory store; see docs/guides/storage.md
  await runtime.recover();

  // Dev mode: any bearer value is the caller. Never in production.
  const authenticator = createAuthenticator({ devMode: true });

  const server = await startMacpGrpcServer({
    runtime,
    authenticate: (headers) => authenticator.authenticate(headers),
    clock,
    host: "127.0.0.1", // the default
    port, // default 50051; 0 picks a free port
    // tls: { cert: readFileSync("cert.pem"), key: readFileSync("key.pem") },
  });
  // The server carries calls; TTL expiry and eviction need the runtime's timers.
  const timers = startTimerDriver(runtime, { clock });
  return {
    url: server.url,
    async close() {
      await timers.stop();
      await server.close({ drainMs: 5000 }); // ends streams, drains calls, closes the runtime
    },
  };
}
