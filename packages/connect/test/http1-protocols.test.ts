// gRPC-Web and the Connect protocol over HTTP/1.1 — what browsers and curl
// use — against startMacpServer's TLS listener (HTTP/1.1 fallback, self-signed
// certificate from openssl), its plaintext listener (HTTP/1.1 beside h2c) and
// a plain node:http server.

import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import {
  connectNodeAdapter,
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import { createMacpRoutes } from "@macp/connect";
import { type MacpServer, startMacpServer } from "@macp/connect/node";
import {
  type Envelope,
  health,
  MACPRuntimeService,
  SessionLifecycleEvent_EventType,
  SessionState,
} from "@macp/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hasOpenssl, selfSignedCertificate } from "./self-signed-certificate.js";
import {
  bearer,
  commitment,
  devAuthenticate,
  newRuntime,
  newSessionId,
  proposal,
  Reader,
  sessionStart,
  vote,
} from "./support.js";

interface Target {
  readonly baseUrl: string;
  readonly ca: string | undefined;
  /**
   * Whether a connection whose request was refused before its body was read
   * is closed (startMacpServer does it); a bare connectNodeAdapter leaves it
   * open with the rest of the body in flight, and the next call on it fails.
   */
  readonly closesRefusedConnections: boolean;
  close(): Promise<void>;
}

async function startTlsServer(): Promise<Target> {
  const tls = selfSignedCertificate();
  const server: MacpServer = await startMacpServer({
    runtime: newRuntime(),
    authenticate: devAuthenticate,
    port: 0,
    tls,
  });
  return {
    baseUrl: server.url,
    ca: tls.cert,
    closesRefusedConnections: true,
    close: () => server.close({ drainMs: 1000 }),
  };
}

async function startPlaintextServer(): Promise<Target> {
  const server: MacpServer = await startMacpServer({
    runtime: newRuntime(),
    authenticate: devAuthenticate,
    port: 0,
  });
  return {
    baseUrl: server.url,
    ca: undefined,
    closesRefusedConnections: true,
    close: () => server.close({ drainMs: 1000 }),
  };
}

async function startHttp1Server(): Promise<Target> {
  const runtime = newRuntime();
  const server = http.createServer(
    connectNodeAdapter({ routes: createMacpRoutes(runtime, { authenticate: devAuthenticate }) }),
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    ca: undefined,
    closesRefusedConnections: false,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await runtime.close();
    },
  };
}

/** Name, start, available, and whether the port serves HTTP/2 as well (node:http does not). */
const servers: [string, () => Promise<Target>, boolean, boolean][] = [
  ["TLS (startMacpServer, HTTP/1.1 fallback)", startTlsServer, hasOpenssl(), true],
  ["plaintext (startMacpServer, HTTP/1.1 beside h2c)", startPlaintextServer, true, true],
  ["plain node:http (connectNodeAdapter)", startHttp1Server, true, false],
];

/** `pooled: false` gives the transport a connection of its own. */
type TransportFactory = (target: Target, pooled?: boolean) => Transport;

function nodeOptions(target: Target, pooled: boolean) {
  return {
    ...(target.ca === undefined ? {} : { ca: target.ca }),
    ...(pooled ? {} : { agent: false as const }),
  };
}

const protocols: [string, TransportFactory][] = [
  [
    "gRPC-Web",
    (target, pooled = true) =>
      createGrpcWebTransport({
        baseUrl: target.baseUrl,
        httpVersion: "1.1",
        nodeOptions: nodeOptions(target, pooled),
      }),
  ],
  [
    "Connect",
    (target, pooled = true) =>
      createConnectTransport({
        baseUrl: target.baseUrl,
        httpVersion: "1.1",
        nodeOptions: nodeOptions(target, pooled),
      }),
  ],
];

async function statusOf(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call;
  } catch (error) {
    return ConnectError.from(error);
  }
  throw new Error("the call succeeded");
}

describe.each(servers)("%s", (_name, start, available, servesHttp2) => {
  let target: Target;

  beforeAll(async () => {
    if (available) target = await start();
  });

  afterAll(async () => {
    await target?.close();
  });

  describe.each(protocols)("%s over HTTP/1.1", (_protocol, transportFor) => {
    const client = () => createClient(MACPRuntimeService, transportFor(target));

    async function send(env: Envelope, agent: string | undefined = env.sender) {
      const response = await client().send(
        { envelope: env },
        agent === undefined ? {} : { headers: bearer(agent) },
      );
      if (response.ack === undefined) throw new Error("no ack");
      return response.ack;
    }

    it.skipIf(!available)("initializes", async () => {
      const response = await client().initialize({ supportedProtocolVersions: ["1.0"] });
      expect(response.selectedProtocolVersion).toBe("1.0");
    });

    it.skipIf(!available)("runs a decision session and reads it back", async () => {
      const sessionId = newSessionId();
      expect((await send(sessionStart(sessionId, "coordinator", ["alice", "bob"]))).ok).toBe(true);
      for (const env of [
        proposal(sessionId, "alice"),
        vote(sessionId, "alice"),
        vote(sessionId, "bob"),
      ]) {
        const ack = await send(env);
        expect(ack.ok, ack.error?.message).toBe(true);
      }
      const done = await send(commitment(sessionId, "coordinator"));
      expect(done.sessionState).toBe(SessionState.RESOLVED);
      const { metadata } = await client().getSession(
        { sessionId },
        { headers: bearer("coordinator") },
      );
      expect(metadata?.state).toBe(SessionState.RESOLVED);
    });

    it.skipIf(!available)(
      "NACKs UNAUTHENTICATED on Send, and answers statuses elsewhere",
      async () => {
        const sessionId = newSessionId();
        const start = sessionStart(sessionId, "", ["alice"]);
        const ack = await send(start, undefined);
        expect(ack).toMatchObject({
          ok: false,
          messageId: start.messageId,
          sessionId,
          error: { code: "UNAUTHENTICATED" },
        });

        const unauthenticated = await statusOf(client().getSession({ sessionId }));
        expect(unauthenticated.code).toBe(Code.Unauthenticated);
        expect(unauthenticated.rawMessage).toMatch(/^UNAUTHENTICATED: /);

        const missing = await statusOf(
          client().cancelSession({ sessionId, reason: "" }, { headers: bearer("coordinator") }),
        );
        expect(missing.code).toBe(Code.NotFound);

        await send(sessionStart(sessionId, "coordinator", ["alice"]));
        const denied = await statusOf(
          client().cancelSession({ sessionId, reason: "" }, { headers: bearer("mallory") }),
        );
        expect(denied.code).toBe(Code.PermissionDenied);

        const noEnvelope = await statusOf(client().send({}, { headers: bearer("alice") }));
        expect(noEnvelope.code).toBe(Code.InvalidArgument);
      },
    );

    it.skipIf(!available)("refuses an oversized request in the transport", async () => {
      const pooled = target.closesRefusedConnections;
      const sender = createClient(MACPRuntimeService, transportFor(target, pooled));
      const huge = proposal(newSessionId(), "alice", "big", new Uint8Array(1_048_576 + 100_000));
      const error = await statusOf(sender.send({ envelope: huge }, { headers: bearer("alice") }));
      expect(error.code).toBe(Code.ResourceExhausted);
      // The refused connection is not reused with the rest of the body in flight.
      const after = await sender.initialize({ supportedProtocolVersions: ["1.0"] });
      expect(after.selectedProtocolVersion).toBe("1.0");
    });

    it.skipIf(!available)("streams the watches (server streaming)", async () => {
      const abort = new AbortController();
      const registry = new Reader(client().watchModeRegistry({}, { signal: abort.signal }));
      expect((await registry.next()).change?.registry).toBe("modes");

      const sessionId = newSessionId();
      await send(sessionStart(sessionId, "coordinator", ["alice"]));
      const sessions = new Reader(
        client().watchSessions({}, { headers: bearer("alice"), signal: abort.signal }),
      );
      let event = (await sessions.next()).event;
      while (event?.session?.sessionId !== sessionId) event = (await sessions.next()).event;
      expect(event.eventType).toBe(SessionLifecycleEvent_EventType.CREATED);
      abort.abort();
    });

    it.skipIf(!available)("answers health checks", async () => {
      const healthClient = createClient(health.Health, transportFor(target));
      const response = await healthClient.check({ service: "macp.v1.MACPRuntimeService" });
      expect(response.status).toBe(health.HealthCheckResponse_ServingStatus.SERVING);
    });
  });

  if (servesHttp2) {
    it.skipIf(!available)("also serves gRPC over HTTP/2 on the same port", async () => {
      const client = createClient(
        MACPRuntimeService,
        createGrpcTransport({
          baseUrl: target.baseUrl,
          ...(target.ca === undefined ? {} : { nodeOptions: { ca: target.ca } }),
        }),
      );
      const response = await client.initialize({ supportedProtocolVersions: ["1.0"] });
      expect(response.selectedProtocolVersion).toBe("1.0");
    });
  }
});
