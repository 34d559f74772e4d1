// A bare echo server answering Send with a fixed Ack, run as a child process
// of the P2 benchmark: `echo-server.js connect` (Connect on Node's HTTP/2) or
// `echo-server.js grpc-js` (@grpc/grpc-js). Both decode the request, as every
// real server must, and encode the fixed answer. `echo-server.js macp-grpc`
// is @macp/grpc's full Send path (metadata, dev authentication, wire
// mapping) over a runtime whose Send accepts at once with the fixed Ack: the
// transport's own cost, without the kernel's work.

import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { createDevIdentity, createRuntime, type MacpRuntime } from "@macp/core";
import { addMacpGrpcServices } from "@macp/grpc";
import { MACPRuntimeService, SendRequestSchema, SendResponseSchema } from "@macp/proto";
import { ok } from "neverthrow";
import { FIXED_SEND_RESPONSE, type FromEchoServer, SEND_PATH, type ToEchoServer } from "./wire.js";

function report(message: FromEchoServer): void {
  process.send?.(message);
}

async function startConnectEcho(): Promise<{ port: number; close(): Promise<void> }> {
  const handler = connectNodeAdapter({
    routes(router) {
      router.service(MACPRuntimeService, {
        send() {
          return FIXED_SEND_RESPONSE;
        },
      });
    },
  });
  const server = http2.createServer({ settings: { maxConcurrentStreams: 128 } }, handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
      }),
  };
}

// Channelz bookkeeping off, as on the runtime's listener: the comparison is of
// the call path, not of a diagnostics service neither side serves.
const BARE_GRPC_OPTIONS: grpc.ServerOptions = { "grpc.enable_channelz": 0 };

async function startGrpcJsEcho(): Promise<{ port: number; close(): Promise<void> }> {
  const server = new grpc.Server(BARE_GRPC_OPTIONS);
  const definition: grpc.ServiceDefinition = {
    send: {
      path: SEND_PATH,
      requestStream: false,
      responseStream: false,
      requestSerialize: (value: unknown) => Buffer.from(value as Uint8Array),
      requestDeserialize: (bytes: Buffer) => fromBinary(SendRequestSchema, bytes),
      responseSerialize: (value: typeof FIXED_SEND_RESPONSE) =>
        Buffer.from(toBinary(SendResponseSchema, value)),
      responseDeserialize: (bytes: Buffer) => fromBinary(SendResponseSchema, bytes),
    },
  };
  server.addService(definition, {
    send(_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) {
      callback(null, FIXED_SEND_RESPONSE);
    },
  });
  return bindGrpc(server);
}

/** A runtime whose Send accepts every envelope at once with the fixed Ack. */
function acceptingRuntime(): MacpRuntime {
  const runtime = createRuntime({ clock: { now: () => Date.now() } });
  const accepted = FIXED_SEND_RESPONSE.ack;
  if (accepted === undefined) throw new Error("the fixed response has no Ack");
  return new Proxy(runtime, {
    get(target, property) {
      if (property === "send") return () => Promise.resolve(ok(accepted));
      const value: unknown = Reflect.get(target, property);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

async function startMacpGrpcEcho(): Promise<{ port: number; close(): Promise<void> }> {
  const server = new grpc.Server(BARE_GRPC_OPTIONS);
  addMacpGrpcServices(server, acceptingRuntime(), {
    authenticate: (headers) => {
      const value = headers.get("authorization");
      return value?.startsWith("Bearer ")
        ? createDevIdentity(value.slice("Bearer ".length))
        : { unauthenticated: "missing credentials" };
    },
  });
  return bindGrpc(server);
}

function bindGrpc(server: grpc.Server): Promise<{ port: number; close(): Promise<void> }> {
  return new Promise((resolve, reject) => {
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, port) => {
      if (error !== null) {
        reject(error);
        return;
      }
      resolve({
        port,
        close: () =>
          new Promise<void>((done) => {
            server.tryShutdown(() => done());
          }),
      });
    });
  });
}

const kind = process.argv[2];
const server =
  kind === "connect"
    ? await startConnectEcho()
    : kind === "grpc-js"
      ? await startGrpcJsEcho()
      : kind === "macp-grpc"
        ? await startMacpGrpcEcho()
        : undefined;
if (server === undefined) {
  console.error("usage: echo-server.js <connect|grpc-js|macp-grpc>");
  process.exit(2);
}
process.on("message", (message: ToEchoServer) => {
  if (message.type === "cpu") {
    const usage = process.cpuUsage();
    report({ type: "cpu", userMicros: usage.user, systemMicros: usage.system });
  } else if (message.type === "stop") {
    // exit() (not a natural end) so --cpu-prof writes its profile promptly.
    void server.close().finally(() => process.exit(0));
  }
});
report({ type: "listening", port: server.port });
