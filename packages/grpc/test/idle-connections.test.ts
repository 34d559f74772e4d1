// Regression: the grpc-js listener kept silent TCP sockets and stalled HTTP/2
// prefaces open forever (grpc-js sets no timeout on its http2 server).

import { connect as connectHttp2 } from "node:http2";
import { connect, type Socket } from "node:net";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { createRuntime } from "@macp/core";
import { type MacpGrpcServer, startMacpGrpcServer } from "@macp/grpc";
import { MACPRuntimeService } from "@macp/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

let server: MacpGrpcServer;

beforeAll(async () => {
  server = await startMacpGrpcServer({
    runtime: createRuntime({ clock: { now: () => Date.now() } }),
    authenticate: () => ({ unauthenticated: "no credentials in this test" }),
    port: 0,
    idleTimeoutMs: 200,
    requestTimeoutMs: 300,
  });
});

afterAll(async () => {
  await server?.close({ drainMs: 0 });
});

/** Opens a raw TCP connection, writes `bytes`, and resolves when the server closes it. */
function closedByServer(bytes: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(server.address.port, "127.0.0.1", () => {
      if (bytes !== "") socket.write(bytes);
    });
    socket.on("error", () => {});
    socket.once("close", () => resolve(socket));
    // The test's own bound: far beyond the 200 ms the server is given.
    setTimeout(() => reject(new Error("the server kept the connection open")), 10_000).unref();
  });
}

describe("the grpc-js listener's idle timeout", () => {
  it("closes a socket that never sends a byte", async () => {
    await expect(closedByServer("")).resolves.toBeDefined();
  });

  it("closes a socket that stops half-way through the HTTP/2 preface", async () => {
    await expect(closedByServer("PRI * HTTP/2.0\r\n")).resolves.toBeDefined();
  });

  it("keeps serving clients, which reconnect after an idle connection is closed", async () => {
    const client = createClient(MACPRuntimeService, createGrpcTransport({ baseUrl: server.url }));
    const initialize = () => client.initialize({ supportedProtocolVersions: ["1.0"] });
    expect((await initialize()).selectedProtocolVersion).toBe("1.0");
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect((await initialize()).selectedProtocolVersion).toBe("1.0");
  });
});

describe("the grpc-js listener's request timeout", () => {
  it("ends a half-sent request with CANCELLED (regression: it was held open)", async () => {
    const session = connectHttp2(server.url);
    session.on("error", () => {});
    try {
      const stream = session.request({
        ":method": "POST",
        ":path": "/macp.v1.MACPRuntimeService/Initialize",
        "content-type": "application/grpc",
        te: "trailers",
      });
      // A gRPC frame that announces 100 bytes and carries 3.
      stream.write(Buffer.from([0, 0, 0, 0, 100, 1, 2, 3]));
      const grpcStatus = await new Promise<string | undefined>((resolve, reject) => {
        stream.on("trailers", (trailers) => resolve(String(trailers["grpc-status"])));
        stream.on("response", (headers) => {
          if (headers["grpc-status"] !== undefined) resolve(String(headers["grpc-status"]));
        });
        stream.on("error", reject);
        setTimeout(() => reject(new Error("the request was held open")), 10_000).unref();
      });
      expect(grpcStatus).toBe("1"); // CANCELLED
    } finally {
      session.destroy();
    }
  });
});
