// The 17 conformance vectors against a real server on an ephemeral port, through
// the client stacks the runtime serves: Connect's gRPC transport (HTTP/2) and
// @grpc/grpc-js with the .proto files loaded at run time (the official
// TypeScript SDK's stack), each against both gRPC servers (Connect on
// node:http2 and @grpc/grpc-js), and gRPC-Web and the Connect protocol over
// HTTP/1.1.
import { randomUUID } from "node:crypto";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { create } from "@bufbuild/protobuf";
import { type Client, createClient, type Transport } from "@connectrpc/connect";
import {
  connectNodeAdapter,
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { createMacpRoutes } from "@macp/connect";
import { startMacpServer } from "@macp/connect/node";
import {
  type Caller,
  createDevIdentity,
  createMemoryStore,
  createRuntime,
  type MacpRuntime,
  type MemoryStore,
} from "@macp/core";
import { startMacpGrpcServer } from "@macp/grpc";
import {
  type Ack,
  AckSchema,
  type Envelope,
  MACPRuntimeService,
  type PolicyDescriptor,
  SessionState,
} from "@macp/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ConformanceDriver, loadVectors, runVector } from "../src/index.js";

const vectors = loadVectors();
const protoDir = fileURLToPath(new URL("../../../proto/", import.meta.url));
const ADMIN = "agent://conformance-admin";

function devAuthenticate(headers: Headers): Caller {
  const value = headers.get("authorization");
  return value?.startsWith("Bearer ")
    ? createDevIdentity(value.slice("Bearer ".length))
    : { unauthenticated: "missing credentials" };
}

const bearer = (sender: string) => ({ authorization: `Bearer ${sender}` });

/** `value` with every Uint8Array (a Buffer included) as a plain Uint8Array, for comparing by content. */
function plainBytes(value: unknown): unknown {
  if (value instanceof Uint8Array) return Uint8Array.from(value);
  if (Array.isArray(value)) return value.map(plainBytes);
  if (value instanceof Map) return new Map([...value].map(([k, v]) => [k, plainBytes(v)]));
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plainBytes(v)]));
  }
  return value;
}

/** Mode state and replay come from the server's own runtime, which runs in this process. */
function inspection(runtime: MacpRuntime, store: MemoryStore) {
  return {
    async inspect(sessionId: string) {
      const snapshot = runtime.inspectSession(sessionId);
      if (!snapshot) throw new Error("session not in memory");
      return { modeState: snapshot.modeState, resolution: snapshot.resolution };
    },
    async replayDifference(sessionId: string) {
      const rebuilt = createRuntime({ clock: { now: () => Date.now() }, store });
      const report = await rebuilt.recover();
      if (report.quarantined.length > 0) return JSON.stringify(report.quarantined);
      // Bytes that arrived over the network are Buffers; the store gives back plain Uint8Arrays.
      expect(plainBytes(rebuilt.inspectSession(sessionId))).toEqual(
        plainBytes(runtime.inspectSession(sessionId)),
      );
      return undefined;
    },
  };
}

function connectDriver(
  client: Client<typeof MACPRuntimeService>,
  runtime: MacpRuntime,
  store: MemoryStore,
): ConformanceDriver {
  return {
    async registerPolicy(descriptor: PolicyDescriptor) {
      const response = await client.registerPolicy(
        { policyDescriptor: descriptor },
        { headers: bearer(ADMIN) },
      );
      if (!response.ok) throw new Error(`policy refused: ${response.error}`);
    },
    async send(envelope: Envelope) {
      const { ack } = await client.send({ envelope }, { headers: bearer(envelope.sender) });
      if (!ack) throw new Error("SendResponse without an ack");
      return ack;
    },
    async sessionState(sessionId, asSender) {
      const { metadata } = await client.getSession({ sessionId }, { headers: bearer(asSender) });
      return metadata?.state ?? SessionState.UNSPECIFIED;
    },
    ...inspection(runtime, store),
  };
}

// What proto-loader produces with keepCase: snake_case fields, enums as names, int64 as strings.
interface WireAck {
  ok: boolean;
  duplicate: boolean;
  message_id: string;
  session_id: string;
  accepted_at_unix_ms: string;
  session_state: keyof typeof SessionState | string;
  error: { code: string; message: string; session_id: string; message_id: string } | null;
}
type Unary = (
  request: object,
  metadata: grpc.Metadata,
  callback: (error: grpc.ServiceError | null, response: never) => void,
) => void;
interface GrpcJsClient {
  Send: Unary;
  GetSession: Unary;
  RegisterPolicy: Unary;
  close(): void;
}

function grpcCall<T>(client: GrpcJsClient, method: Unary, request: object, sender: string) {
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${sender}`);
  return new Promise<T>((resolve, reject) => {
    method.call(client, request, metadata, (error, response: T) =>
      error ? reject(error) : resolve(response),
    );
  });
}

function stateOf(name: string): SessionState {
  const value = SessionState[name.replace("SESSION_STATE_", "") as keyof typeof SessionState];
  return typeof value === "number" ? value : SessionState.UNSPECIFIED;
}

function grpcJsDriver(
  client: GrpcJsClient,
  runtime: MacpRuntime,
  store: MemoryStore,
): ConformanceDriver {
  return {
    async registerPolicy(descriptor) {
      const response = await grpcCall<{ ok: boolean; error: string }>(
        client,
        client.RegisterPolicy,
        {
          policy_descriptor: {
            policy_id: descriptor.policyId,
            mode: descriptor.mode,
            description: descriptor.description,
            rules: descriptor.rules,
            schema_version: descriptor.schemaVersion,
          },
        },
        ADMIN,
      );
      if (!response.ok) throw new Error(`policy refused: ${response.error}`);
    },
    async send(envelope) {
      const { ack } = await grpcCall<{ ack: WireAck }>(
        client,
        client.Send,
        {
          envelope: {
            macp_version: envelope.macpVersion,
            mode: envelope.mode,
            message_type: envelope.messageType,
            message_id: envelope.messageId,
            session_id: envelope.sessionId,
            sender: envelope.sender,
            timestamp_unix_ms: envelope.timestampUnixMs.toString(),
            payload: Buffer.from(envelope.payload),
          },
        },
        envelope.sender,
      );
      return create(AckSchema, {
        ok: ack.ok,
        duplicate: ack.duplicate,
        messageId: ack.message_id,
        sessionId: ack.session_id,
        acceptedAtUnixMs: BigInt(ack.accepted_at_unix_ms),
        sessionState: stateOf(ack.session_state),
        ...(ack.error ? { error: { code: ack.error.code, message: ack.error.message } } : {}),
      }) as Ack;
    },
    async sessionState(sessionId, asSender) {
      const { metadata } = await grpcCall<{ metadata: { state: string } }>(
        client,
        client.GetSession,
        { session_id: sessionId },
        asSender,
      );
      return stateOf(metadata.state);
    },
    ...inspection(runtime, store),
  };
}

interface Served {
  runtime: MacpRuntime;
  store: MemoryStore;
  close(): Promise<void>;
}

function newRuntime(): { runtime: MacpRuntime; store: MemoryStore } {
  const store = createMemoryStore();
  // Every vector message comes from a handful of senders in quick succession.
  const limits = { messagesPerMinute: 100_000, sessionStartsPerMinute: 100_000 };
  return { runtime: createRuntime({ clock: { now: () => Date.now() }, store, limits }), store };
}

/** The two gRPC servers: Connect on node:http2, and @grpc/grpc-js. */
type GrpcServerKind = "connect" | "grpc-js";

async function serveHttp2(kind: GrpcServerKind): Promise<Served & { url: string; port: number }> {
  const { runtime, store } = newRuntime();
  const start = kind === "connect" ? startMacpServer : startMacpGrpcServer;
  const server = await start({ runtime, authenticate: devAuthenticate, port: 0 });
  return {
    runtime,
    store,
    url: server.url,
    port: server.address.port,
    close: () => server.close({ drainMs: 1000 }),
  };
}

async function serveHttp1(): Promise<Served & { url: string }> {
  const { runtime, store } = newRuntime();
  const server = http.createServer(
    connectNodeAdapter({ routes: createMacpRoutes(runtime, { authenticate: devAuthenticate }) }),
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    runtime,
    store,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await runtime.close();
    },
  };
}

function grpcJsClientFor(port: number): GrpcJsClient {
  const definition = protoLoader.loadSync(["macp/v1/core.proto"], {
    includeDirs: [protoDir],
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const loaded = grpc.loadPackageDefinition(definition) as unknown as {
    macp: {
      v1: {
        MACPRuntimeService: new (
          target: string,
          credentials: grpc.ChannelCredentials,
        ) => GrpcJsClient;
      };
    };
  };
  return new loaded.macp.v1.MACPRuntimeService(
    `127.0.0.1:${port}`,
    grpc.credentials.createInsecure(),
  );
}

const grpcStacks = (
  kind: GrpcServerKind,
  server: string,
): [string, () => Promise<{ driver: ConformanceDriver; close(): Promise<void> }>][] => [
  [
    `Connect gRPC transport (HTTP/2) to ${server}`,
    async () => {
      const served = await serveHttp2(kind);
      const client = createClient(MACPRuntimeService, createGrpcTransport({ baseUrl: served.url }));
      return { driver: connectDriver(client, served.runtime, served.store), close: served.close };
    },
  ],
  [
    `@grpc/grpc-js with proto-loader (the official TypeScript SDK's stack) to ${server}`,
    async () => {
      const served = await serveHttp2(kind);
      const client = grpcJsClientFor(served.port);
      return {
        driver: grpcJsDriver(client, served.runtime, served.store),
        async close() {
          client.close();
          await served.close();
        },
      };
    },
  ],
];

/** One server and one client stack per describe block: vectors register policies by fixed ids. */
const stacks: [string, () => Promise<{ driver: ConformanceDriver; close(): Promise<void> }>][] = [
  ...grpcStacks("connect", "Connect on node:http2"),
  ...grpcStacks("grpc-js", "@grpc/grpc-js"),
  [
    "gRPC-Web over HTTP/1.1",
    async () => {
      const served = await serveHttp1();
      const transport: Transport = createGrpcWebTransport({
        baseUrl: served.url,
        httpVersion: "1.1",
      });
      const client = createClient(MACPRuntimeService, transport);
      return { driver: connectDriver(client, served.runtime, served.store), close: served.close };
    },
  ],
  [
    "Connect protocol over HTTP/1.1",
    async () => {
      const served = await serveHttp1();
      const transport: Transport = createConnectTransport({
        baseUrl: served.url,
        httpVersion: "1.1",
      });
      const client = createClient(MACPRuntimeService, transport);
      return { driver: connectDriver(client, served.runtime, served.store), close: served.close };
    },
  ],
];

for (const [stack, open] of stacks) {
  describe(`conformance vectors over ${stack}`, () => {
    let opened: Awaited<ReturnType<typeof open>>;
    beforeAll(async () => {
      opened = await open();
    });
    afterAll(async () => {
      await opened?.close();
    });
    for (const vector of vectors) {
      it(vector.name, async () => {
        const steps = await runVector(vector, opened.driver, { sessionId: randomUUID() });
        expect(steps).toHaveLength(vector.messages.length);
      });
    }
  });
}
