// The Connect listener's shutdown signal lives as long as the server; a call
// must leave nothing on it once it is over (AbortSignal.any would: on Node 20
// it keeps a reference to every signal it ever made from it).
import { getEventListeners } from "node:events";
import { types } from "node:util";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { startMacpServer } from "@macp/connect/node";
import { MACPRuntimeService } from "@macp/proto";
import { describe, expect, it } from "vitest";
import { devAuthenticate, newRuntime } from "./support.js";

/** What the signal holds for other signals derived from it, where Node keeps that on the signal. */
function dependantsOf(signal: AbortSignal): number {
  const key = Object.getOwnPropertySymbols(signal).find(
    (symbol) => symbol.description === "kDependantSignals",
  );
  const dependants: unknown = key === undefined ? undefined : Reflect.get(signal, key);
  return types.isSet(dependants) ? dependants.size : 0;
}

describe("the Connect listener's shutdown signal", () => {
  it("holds nothing for calls that are over", async () => {
    let shutdownSignal: AbortSignal | undefined;
    const server = await startMacpServer({
      runtime: newRuntime(),
      authenticate: devAuthenticate,
      port: 0,
      extraRoutes: (_router, context) => {
        shutdownSignal = context.shutdownSignal;
      },
    });
    try {
      const client = createClient(MACPRuntimeService, createGrpcTransport({ baseUrl: server.url }));
      for (let call = 0; call < 50; call++) {
        await client.initialize({ supportedProtocolVersions: ["1.0"] });
      }
      await Promise.all(
        Array.from({ length: 20 }, () => client.initialize({ supportedProtocolVersions: ["1.0"] })),
      );
      if (shutdownSignal === undefined) throw new Error("extraRoutes got no shutdown signal");
      expect(getEventListeners(shutdownSignal, "abort")).toHaveLength(0);
      expect(dependantsOf(shutdownSignal)).toBe(0);
    } finally {
      await server.close({ drainMs: 0 });
    }
  });
});
