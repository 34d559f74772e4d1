// The official TypeScript SDK's stack: @grpc/grpc-js with the .proto files
// loaded at run time by @grpc/proto-loader (keepCase), against h2c.

import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { startMacpServer } from "@macp/connect/node";
import type { Envelope } from "@macp/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  commitment,
  devAuthenticate,
  GRPC_SERVERS,
  type GrpcServer,
  newRuntime,
  newSessionId,
  proposal,
  sessionStart,
  sleep,
  vote,
  withTimeout,
} from "./support.js";

const protoDir = fileURLToPath(new URL("../../../proto", import.meta.url));

// What proto-loader produces with keepCase: snake_case fields, enums as names, int64 as strings.
interface WireEnvelope {
  macp_version: string;
  mode: string;
  message_type: string;
  message_id: string;
  session_id: string;
  sender: string;
  timestamp_unix_ms: string;
  payload: Buffer;
}
interface WireError {
  code: string;
  message: string;
  session_id: string;
  message_id: string;
  details: Buffer;
}
interface WireAck {
  ok: boolean;
  duplicate: boolean;
  message_id: string;
  session_id: string;
  accepted_at_unix_ms: string;
  session_state: string;
  error: WireError | null;
}
interface StreamResponse {
  envelope?: WireEnvelope | null;
  error?: WireError | null;
  response?: "envelope" | "error";
}

type Callback<T> = (error: grpc.ServiceError | null, response: T) => void;
type Unary<Req, Res> = (
  request: Req,
  metadata: grpc.Metadata,
  callback: Callback<Res>,
) => grpc.ClientUnaryCall;

interface MacpClient extends grpc.Client {
  Initialize: Unary<
    { supported_protocol_versions: string[] },
    { selected_protocol_version: string; runtime_info: { name: string } }
  >;
  Send: Unary<{ envelope?: WireEnvelope }, { ack: WireAck }>;
  GetSession: Unary<{ session_id: string }, { metadata: { state: string; initiator: string } }>;
  CancelSession: Unary<{ session_id: string; reason: string }, { ack: WireAck }>;
  StreamSession: (
    metadata: grpc.Metadata,
  ) => grpc.ClientDuplexStream<
    { envelope?: WireEnvelope; subscribe_session_id?: string; after_sequence?: string },
    StreamResponse
  >;
}
interface HealthClient extends grpc.Client {
  Check: Unary<{ service: string }, { status: string }>;
}

describe.each(GRPC_SERVERS)("served by %s", (_name, startServer) => {
  let server: GrpcServer;
  let client: MacpClient;
  let healthClient: HealthClient;
  let connectMacpClient: (target: string) => MacpClient;

  function call<Req, Res>(
    target: grpc.Client,
    method: Unary<Req, Res>,
    request: Req,
    agent?: string,
  ): Promise<Res> {
    const metadata = new grpc.Metadata();
    if (agent !== undefined) metadata.set("authorization", `Bearer ${agent}`);
    return new Promise((resolve, reject) => {
      method.call(target, request, metadata, (error, response) => {
        if (error !== null) reject(error);
        else resolve(response);
      });
    });
  }

  async function statusOf(promise: Promise<unknown>): Promise<grpc.ServiceError> {
    try {
      await promise;
    } catch (error) {
      return error as grpc.ServiceError;
    }
    throw new Error("the call succeeded");
  }

  function toWire(env: Envelope): WireEnvelope {
    return {
      macp_version: env.macpVersion,
      mode: env.mode,
      message_type: env.messageType,
      message_id: env.messageId,
      session_id: env.sessionId,
      sender: env.sender,
      timestamp_unix_ms: env.timestampUnixMs.toString(),
      payload: Buffer.from(env.payload),
    };
  }

  beforeAll(async () => {
    server = await startServer({ runtime: newRuntime(), authenticate: devAuthenticate, port: 0 });
    const definition = protoLoader.loadSync(["macp/v1/core.proto", "grpc/health/v1/health.proto"], {
      includeDirs: [protoDir],
      keepCase: true,
      longs: String,
      enums: String,
      defaults: true,
      oneofs: true,
    });
    // grpc-js's loaded package tree is untyped by design: name the two constructors we use.
    type Constructor<T> = new (target: string, credentials: grpc.ChannelCredentials) => T;
    const loaded = grpc.loadPackageDefinition(definition) as unknown as {
      macp: { v1: { MACPRuntimeService: Constructor<MacpClient> } };
      grpc: { health: { v1: { Health: Constructor<HealthClient> } } };
    };
    const target = `127.0.0.1:${server.address.port}`;
    const credentials = grpc.credentials.createInsecure();
    connectMacpClient = (address) => new loaded.macp.v1.MACPRuntimeService(address, credentials);
    client = connectMacpClient(target);
    healthClient = new loaded.grpc.health.v1.Health(target, credentials);
  });

  afterAll(async () => {
    client?.close();
    healthClient?.close();
    await server?.close({ drainMs: 1000 });
  });

  describe("@grpc/grpc-js client", () => {
    it("initializes without credentials", async () => {
      const response = await call(client, client.Initialize, {
        supported_protocol_versions: ["1.0"],
      });
      expect(response.selected_protocol_version).toBe("1.0");
      expect(response.runtime_info.name).not.toBe("");
    });

    it("runs a decision session over Send and reads it back with GetSession", async () => {
      const sessionId = newSessionId();
      const start = sessionStart(sessionId, "coordinator", ["alice", "bob"]);
      const started = await call(client, client.Send, { envelope: toWire(start) }, "coordinator");
      expect(started.ack).toMatchObject({
        ok: true,
        message_id: start.messageId,
        session_id: sessionId,
        session_state: "SESSION_STATE_OPEN",
      });
      for (const env of [
        proposal(sessionId, "alice"),
        vote(sessionId, "alice"),
        vote(sessionId, "bob"),
      ]) {
        const { ack } = await call(client, client.Send, { envelope: toWire(env) }, env.sender);
        expect(ack.ok, ack.error?.message).toBe(true);
      }
      const done = await call(
        client,
        client.Send,
        { envelope: toWire(commitment(sessionId, "coordinator")) },
        "coordinator",
      );
      expect(done.ack.session_state).toBe("SESSION_STATE_RESOLVED");
      const read = await call(client, client.GetSession, { session_id: sessionId }, "bob");
      expect(read.metadata).toMatchObject({
        state: "SESSION_STATE_RESOLVED",
        initiator: "coordinator",
      });
    });

    it("gets UNAUTHENTICATED as a NACK on Send but as a status on GetSession", async () => {
      const sessionId = newSessionId();
      const start = sessionStart(sessionId, "", ["alice"]);
      const { ack } = await call(client, client.Send, { envelope: toWire(start) });
      expect(ack).toMatchObject({
        ok: false,
        duplicate: false,
        message_id: start.messageId,
        session_id: sessionId,
        session_state: "SESSION_STATE_UNSPECIFIED",
        error: { code: "UNAUTHENTICATED", session_id: sessionId, message_id: start.messageId },
      });
      const error = await statusOf(call(client, client.GetSession, { session_id: sessionId }));
      expect(error.code).toBe(grpc.status.UNAUTHENTICATED);
      expect(error.details).toMatch(/^UNAUTHENTICATED: /);
    });

    it("gets NOT_FOUND and PERMISSION_DENIED statuses from CancelSession", async () => {
      const missing = await statusOf(
        call(
          client,
          client.CancelSession,
          { session_id: newSessionId(), reason: "" },
          "coordinator",
        ),
      );
      expect(missing.code).toBe(grpc.status.NOT_FOUND);

      const sessionId = newSessionId();
      await call(
        client,
        client.Send,
        { envelope: toWire(sessionStart(sessionId, "coordinator", ["alice"])) },
        "coordinator",
      );
      const denied = await statusOf(
        call(client, client.CancelSession, { session_id: sessionId, reason: "" }, "mallory"),
      );
      expect(denied.code).toBe(grpc.status.PERMISSION_DENIED);
      expect(denied.details).toMatch(/^FORBIDDEN: /);
    });

    it("gets INVALID_ARGUMENT for a Send without an envelope", async () => {
      const error = await statusOf(call(client, client.Send, {}, "alice"));
      expect(error.code).toBe(grpc.status.INVALID_ARGUMENT);
    });

    it("is refused by the transport when the request is oversized", async () => {
      const sessionId = newSessionId();
      const huge = proposal(sessionId, "alice", "big", new Uint8Array(1_048_576 + 100_000));
      const error = await statusOf(call(client, client.Send, { envelope: toWire(huge) }, "alice"));
      expect(error.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    });

    it("streams: echo on StreamSession, then a passive subscriber sees the same history", async () => {
      const sessionId = newSessionId();
      const metadata = new grpc.Metadata();
      metadata.set("authorization", "Bearer coordinator");
      const stream = client.StreamSession(metadata);
      const received: StreamResponse[] = [];
      const arrived = new Promise<void>((resolve) => {
        stream.on("data", (response: StreamResponse) => {
          received.push(response);
          if (received.length === 2) resolve();
        });
      });
      const start = sessionStart(sessionId, "coordinator", ["alice"]);
      stream.write({ envelope: toWire(start) });
      const first = proposal(sessionId, "alice");
      await call(client, client.Send, { envelope: toWire(first) }, "alice");
      await withTimeout(arrived, 5000, "two envelopes");
      expect(received.map((response) => response.response)).toEqual(["envelope", "envelope"]);
      expect(received.map((response) => response.envelope?.message_id)).toEqual([
        start.messageId,
        first.messageId,
      ]);
      const ended = new Promise<void>((resolve) => stream.on("end", () => resolve()));
      stream.end();
      await withTimeout(ended, 5000, "the end of the stream");

      const observerMetadata = new grpc.Metadata();
      observerMetadata.set("authorization", "Bearer alice");
      const subscriber = client.StreamSession(observerMetadata);
      const replay: StreamResponse[] = [];
      const replayed = new Promise<void>((resolve) => {
        subscriber.on("data", (response: StreamResponse) => {
          replay.push(response);
          if (replay.length === 2) resolve();
        });
      });
      subscriber.on("error", () => {}); // the CANCELLED our own cancel() causes
      subscriber.write({ subscribe_session_id: sessionId, after_sequence: "0" });
      await withTimeout(replayed, 5000, "the replay");
      expect(replay.map((response) => response.envelope?.message_type)).toEqual([
        "SessionStart",
        "Proposal",
      ]);
      subscriber.cancel();
    });

    it("answers health checks", async () => {
      expect((await call(healthClient, healthClient.Check, { service: "" })).status).toBe(
        "SERVING",
      );
      const macp = await call(healthClient, healthClient.Check, {
        service: "macp.v1.MACPRuntimeService",
      });
      expect(macp.status).toBe("SERVING");
      const unknown = await statusOf(call(healthClient, healthClient.Check, { service: "x.Y" }));
      expect(unknown.code).toBe(grpc.status.NOT_FOUND);
    });
  });

  describe("@grpc/grpc-js and idle connections", () => {
    it("reconnects transparently after the Connect server closed its idle connection", async () => {
      const idleServer = await startMacpServer({
        runtime: newRuntime(),
        authenticate: devAuthenticate,
        port: 0,
        idleTimeoutMs: 100,
      });
      const idleClient = connectMacpClient(`127.0.0.1:${idleServer.address.port}`);
      try {
        const initialize = () =>
          call(idleClient, idleClient.Initialize, { supported_protocol_versions: ["1.0"] });
        expect((await initialize()).selected_protocol_version).toBe("1.0");
        // Long enough for the server to send GOAWAY and close the connection.
        await sleep(500);
        expect((await initialize()).selected_protocol_version).toBe("1.0");
      } finally {
        idleClient.close();
        await idleServer.close({ drainMs: 0 });
      }
    });
  });
});
