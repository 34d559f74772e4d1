// Both gRPC listeners give every HTTP/2 session @macp/node-http2's StreamTable
// (why: see that package), over plaintext and TLS, and serve through it.

import type { Http2Session } from "node:http2";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import type * as NodeHttp2 from "@macp/node-http2";
import { usesStreamTable } from "@macp/node-http2";
import { MACPRuntimeService } from "@macp/proto";
import { describe, expect, it, vi } from "vitest";
import { hasOpenssl, selfSignedCertificate } from "./self-signed-certificate.js";
import {
  bearer,
  devAuthenticate,
  GRPC_SERVERS,
  newRuntime,
  proposal,
  sessionStart,
} from "./support.js";

/** Every HTTP/2 session the listeners created, whichever way they installed the table. */
const created = vi.hoisted(() => ({ sessions: [] as Http2Session[] }));

vi.mock("@macp/node-http2", async (importOriginal) => {
  const actual = await importOriginal<typeof NodeHttp2>();
  return {
    ...actual,
    installStreamTable(session: Http2Session) {
      created.sessions.push(session);
      return actual.installStreamTable(session);
    },
    installStreamTables(server: NodeHttp2.Http2SessionSource) {
      server.on("session", (session) => created.sessions.push(session));
      actual.installStreamTables(server);
    },
  } satisfies typeof NodeHttp2;
});

const TLS_CASES = hasOpenssl() ? ([false, true] as const) : ([false] as const);

describe.each(GRPC_SERVERS)("%s", (_name, start) => {
  it.each(TLS_CASES)(
    "keeps each session's open streams in a StreamTable (TLS: %s)",
    async (tls) => {
      const certificate = tls ? selfSignedCertificate() : undefined;
      const server = await start({
        runtime: newRuntime({ messagesPerMinute: 10_000 }),
        authenticate: devAuthenticate,
        port: 0,
        ...(certificate === undefined ? {} : { tls: certificate }),
      });
      const before = created.sessions.length;
      try {
        const client = createClient(
          MACPRuntimeService,
          createGrpcTransport({
            baseUrl: server.url,
            ...(certificate === undefined ? {} : { nodeOptions: { ca: certificate.cert } }),
          }),
        );
        const sessionId = crypto.randomUUID();
        const headers = bearer("alice");
        const started = await client.send(
          { envelope: sessionStart(sessionId, "alice", ["alice", "bob"]) },
          { headers },
        );
        expect(started.ack?.ok).toBe(true);
        // Concurrent and back-to-back calls: streams open and close on one connection.
        const concurrent = await Promise.all(
          Array.from({ length: 20 }, (_, index) =>
            client.send({ envelope: proposal(sessionId, "alice", `c${index}`) }, { headers }),
          ),
        );
        expect(concurrent.every((answer) => answer.ack?.ok === true)).toBe(true);
        for (let index = 0; index < 20; index++) {
          const answer = await client.send(
            { envelope: proposal(sessionId, "alice", `s${index}`) },
            { headers },
          );
          expect(answer.ack?.ok).toBe(true);
        }
        const sessions = created.sessions.slice(before);
        expect(sessions.length).toBeGreaterThan(0);
        expect(sessions.every(usesStreamTable)).toBe(true);
      } finally {
        await server.close({ drainMs: 1000 });
      }
    },
  );
});
