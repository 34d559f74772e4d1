// Graceful shutdown of the grpc-js listener: calls get the drain, and a
// connection still busy after it is cut. grpc-js's own forceShutdown() only
// cuts connections its channelz bookkeeping tracks; the listener runs without
// channelz, so it must cut what it accepted itself.

import { type ClientHttp2Session, connect as connectHttp2 } from "node:http2";
import { createRuntime } from "@macp/core";
import { startMacpGrpcServer } from "@macp/grpc";
import { describe, expect, it } from "vitest";

/** A call whose request never arrives: headers only, no message, no end of stream. */
function openStalledCall(port: number): { session: ClientHttp2Session; closed: Promise<void> } {
  const session = connectHttp2(`http://127.0.0.1:${port}`);
  session.on("error", () => {});
  const closed = new Promise<void>((resolve) => session.once("close", () => resolve()));
  const stream = session.request(
    {
      ":method": "POST",
      ":path": "/macp.v1.MACPRuntimeService/Send",
      "content-type": "application/grpc",
      te: "trailers",
    },
    { endStream: false },
  );
  stream.on("error", () => {});
  return { session, closed };
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([
    promise,
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms).unref(),
    ),
  ]);
}

describe("closing the grpc-js listener", () => {
  it("cuts a connection whose call is still running after the drain", async () => {
    const server = await startMacpGrpcServer({
      runtime: createRuntime({ clock: { now: () => Date.now() } }),
      authenticate: () => ({ unauthenticated: "no credentials in this test" }),
      port: 0,
      // Neither timeout may end the call first: only the shutdown does.
      requestTimeoutMs: 60_000,
      idleTimeoutMs: 60_000,
    });
    const call = openStalledCall(server.address.port);
    // The call is in the server once the connection is up and the headers are sent.
    await within(
      new Promise<void>((resolve) => call.session.once("remoteSettings", () => resolve())),
      5000,
      "the connection was not set up",
    );
    await expect(
      within(server.close({ drainMs: 100 }), 5000, "close() did not finish"),
    ).resolves.toBeUndefined();
    await expect(
      within(call.closed, 5000, "the busy connection was not cut"),
    ).resolves.toBeUndefined();
    expect(call.session.destroyed).toBe(true);
  });

  it("lets an idle connection go with GOAWAY, without waiting for the drain", async () => {
    const server = await startMacpGrpcServer({
      runtime: createRuntime({ clock: { now: () => Date.now() } }),
      authenticate: () => ({ unauthenticated: "no credentials in this test" }),
      port: 0,
    });
    const session = connectHttp2(`http://127.0.0.1:${server.address.port}`);
    session.on("error", () => {});
    const goaway = new Promise<void>((resolve) => session.once("goaway", () => resolve()));
    await within(
      new Promise<void>((resolve) => session.once("remoteSettings", () => resolve())),
      5000,
      "the connection was not set up",
    );
    // The drain is a bound, not a wait: with no call in flight close() ends at once.
    await expect(
      within(server.close({ drainMs: 60_000 }), 5000, "close() waited for the drain"),
    ).resolves.toBeUndefined();
    await expect(within(goaway, 5000, "no GOAWAY")).resolves.toBeUndefined();
    session.destroy();
  });
});
