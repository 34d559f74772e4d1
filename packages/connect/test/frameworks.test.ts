// The mounting examples of packages/connect/README.md and
// docs/guides/http-frameworks.md, run for real: node:http2, Fastify, Express.

import * as http from "node:http";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { create } from "@bufbuild/protobuf";
import { cors, createClient, type Transport } from "@connectrpc/connect";
import { expressConnectMiddleware } from "@connectrpc/connect-express";
import { fastifyConnectPlugin } from "@connectrpc/connect-fastify";
import {
  connectNodeAdapter,
  createConnectTransport,
  createGrpcTransport,
} from "@connectrpc/connect-node";
import { createMacpRoutes } from "@macp/connect";
import { startTimerDriver, useSpecGrpcMessageEncoding } from "@macp/connect/node";
import type { MacpRuntime } from "@macp/core";
import { installStreamTables } from "@macp/node-http2";
import {
  MACPRuntimeService,
  SessionState,
  type StreamSessionRequest,
  StreamSessionRequestSchema,
} from "@macp/proto";
import express from "express";
import { fastify } from "fastify";
import { afterAll, describe, expect, it } from "vitest";
import {
  bearer,
  devAuthenticate,
  newRuntime,
  newSessionId,
  pushable,
  Reader,
  rawGrpcCall,
  sessionStart,
} from "./support.js";

async function exercise(transport: Transport): Promise<void> {
  const client = createClient(MACPRuntimeService, transport);
  const init = await client.initialize({ supportedProtocolVersions: ["1.0"] });
  expect(init.selectedProtocolVersion).toBe("1.0");
  const sessionId = newSessionId();
  const { ack } = await client.send(
    { envelope: sessionStart(sessionId, "coordinator", ["alice"]) },
    { headers: bearer("coordinator") },
  );
  expect(ack?.sessionState).toBe(SessionState.OPEN);
}

async function exerciseStream(transport: Transport): Promise<void> {
  const client = createClient(MACPRuntimeService, transport);
  const frames = pushable<StreamSessionRequest>();
  const reader = new Reader(client.streamSession(frames, { headers: bearer("coordinator") }));
  const start = sessionStart(newSessionId(), "coordinator", ["alice"]);
  frames.push(create(StreamSessionRequestSchema, { envelope: start }));
  const echoed = await reader.next();
  expect(echoed.response.value).toMatchObject({ messageId: start.messageId });
  frames.close();
  expect((await reader.drain()).error).toBeUndefined();
}

/** The raw grpc-message trailer, as @grpc/grpc-js reads it (decodeURI). */
async function expectSpecEncodedStatusMessage(baseUrl: string): Promise<void> {
  const call = await rawGrpcCall(baseUrl, "/macp.v1.MACPRuntimeService/GetSession", {});
  call.write(new Uint8Array(0));
  call.end();
  const end = await call.finish();
  call.close();
  expect(end.status).toBe(16);
  expect(end.rawMessage).toMatch(/^UNAUTHENTICATED: /);
}

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups) await cleanup();
});

/** HTTP/2 servers close only when their sessions do; clients keep theirs open for reuse. */
function trackSessions(server: http2.Http2Server): () => void {
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (session: http2.ServerHttp2Session) => sessions.add(session));
  return () => {
    for (const session of sessions) session.destroy();
  };
}

function portOf(server: http.Server | http2.Http2Server): number {
  return (server.address() as AddressInfo).port;
}

describe("mounting the routes", () => {
  it("on node:http2 (h2c) with connectNodeAdapter", async () => {
    const runtime: MacpRuntime = newRuntime();
    const timers = startTimerDriver(runtime);
    const handler = connectNodeAdapter({
      routes: createMacpRoutes(runtime, { authenticate: devAuthenticate }),
    });
    const server = http2.createServer((request, response) => {
      useSpecGrpcMessageEncoding(response); // grpc-js reads `FORBIDDEN: …`, not `FORBIDDEN%3A …`
      handler(request, response);
    });
    installStreamTables(server); // each connection's per-call garbage dies young (see below)
    const endSessions = trackSessions(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    cleanups.push(async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      endSessions();
      await closed;
      await timers.stop();
      await runtime.close();
    });
    const transport = createGrpcTransport({ baseUrl: `http://127.0.0.1:${portOf(server)}` });
    await exercise(transport);
    await exerciseStream(transport);
    await expectSpecEncodedStatusMessage(`http://127.0.0.1:${portOf(server)}`);
  });

  it("on Fastify (HTTP/2) with @connectrpc/connect-fastify", async () => {
    const runtime = newRuntime();
    const app = fastify({ http2: true });
    app.addHook("onRequest", (_request, reply, done) => {
      useSpecGrpcMessageEncoding(reply.raw);
      done();
    });
    await app.register(fastifyConnectPlugin, {
      routes: createMacpRoutes(runtime, { authenticate: devAuthenticate }),
    });
    const endSessions = trackSessions(app.server);
    await app.listen({ host: "127.0.0.1", port: 0 });
    cleanups.push(async () => {
      const closed = app.close();
      endSessions();
      await closed;
      await runtime.close();
    });
    const baseUrl = `http://127.0.0.1:${portOf(app.server)}`;
    await exercise(createGrpcTransport({ baseUrl }));
    await exerciseStream(createGrpcTransport({ baseUrl }));
    await expectSpecEncodedStatusMessage(baseUrl);
  });

  it("on Express (HTTP/1.1) with @connectrpc/connect-express, CORS and express.json()", async () => {
    const runtime = newRuntime();
    const app = express();
    app.use((request, response, next) => {
      response.setHeader("access-control-allow-origin", "https://app.example.com");
      response.setHeader("access-control-allow-methods", cors.allowedMethods.join(", "));
      response.setHeader(
        "access-control-allow-headers",
        [...cors.allowedHeaders, "authorization", "x-macp-token"].join(", "),
      );
      response.setHeader(
        "access-control-expose-headers",
        [...cors.exposedHeaders, "macp-error-details-bin"].join(", "),
      );
      if (request.method === "OPTIONS") {
        response.status(204).end();
        return;
      }
      next();
    });
    app.use(express.json()); // tolerated: the middleware takes the parsed body
    app.use(
      expressConnectMiddleware({
        routes: createMacpRoutes(runtime, { authenticate: devAuthenticate }),
      }),
    );
    const server = http.createServer(app);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    cleanups.push(async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await runtime.close();
    });
    const baseUrl = `http://127.0.0.1:${portOf(server)}`;
    await exercise(createConnectTransport({ baseUrl, httpVersion: "1.1" }));
    // JSON through express.json(), as a browser using the Connect protocol sends it.
    await exercise(createConnectTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat: false }));

    const preflight = await fetch(`${baseUrl}/macp.v1.MACPRuntimeService/Send`, {
      method: "OPTIONS",
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("access-control-allow-headers")).toContain("authorization");

    // The curl example of the guide's health section.
    const health = await fetch(`${baseUrl}/grpc.health.v1.Health/Check`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    expect(await health.json()).toEqual({ status: "SERVING" });
  });
});
