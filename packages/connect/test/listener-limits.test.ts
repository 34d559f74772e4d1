// Regression tests: the grpc-js listener did not apply
// MACP_CONCURRENCY_LIMIT_PER_CONNECTION (every call of a connection ran at
// once), and neither listener ended a unary call whose handler never answered
// (a stuck authenticator or store) when MACP_REQUEST_TIMEOUT_SECS expired.
// Both listeners must behave the same; each test runs on both. Waits are only
// there to give a wrong server the chance to misbehave: a right one passes
// whatever the timing.

import * as http2 from "node:http2";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import type { MacpServerOptions } from "@macp/connect/node";
import type { Caller } from "@macp/core";
import {
  MACPRuntimeService,
  SessionLifecycleEvent_EventType,
  type StreamSessionRequest,
  StreamSessionRequestSchema,
} from "@macp/proto";
import { afterEach, describe, expect, it } from "vitest";
import { hasOpenssl, selfSignedCertificate } from "./self-signed-certificate.js";
import {
  bearer,
  devAuthenticate,
  GRPC_SERVERS,
  type GrpcServer,
  grpcRequestHeaders,
  newRuntime,
  newSessionId,
  pushable,
  Reader,
  sessionStart,
  sleep,
  withTimeout,
} from "./support.js";

/** The bound within which something that should happen must have happened. */
const GENEROUS_MS = 10_000;
/** How long a wrong server is given to let a call through that should wait. */
const SETTLE_MS = 300;

let server: GrpcServer | undefined;

afterEach(async () => {
  await server?.close({ drainMs: 0 });
  server = undefined;
});

/**
 * An authenticator that holds every call (as a slow store would) until
 * `open()`, and counts the calls inside it. The agent "stuck" is never let through.
 */
function heldAuthenticator() {
  let open = false;
  const held: (() => void)[] = [];
  const seen: string[] = [];
  const counts = { inside: 0, most: 0 };
  const authenticate = async (headers: Headers): Promise<Caller> => {
    seen.push(headers.get("x-call") ?? "");
    counts.inside++;
    counts.most = Math.max(counts.most, counts.inside);
    if (headers.get("authorization") === "Bearer stuck") return new Promise<never>(() => {});
    if (!open) await new Promise<void>((resolve) => held.push(resolve));
    counts.inside--;
    return devAuthenticate(headers);
  };
  return {
    authenticate,
    counts,
    /** The calls that reached the authenticator, by their x-call header. */
    seen,
    open() {
      open = true;
      for (const release of held.splice(0)) release();
    },
    /** Resolves once `n` calls are inside. */
    async untilInside(n: number): Promise<void> {
      await withTimeout(
        (async () => {
          while (counts.inside < n) await sleep(5);
        })(),
        GENEROUS_MS,
        `${n} calls in the handler`,
      );
    },
  };
}

/** A client whose calls all share one HTTP/2 connection. */
function clientOf(target: GrpcServer, ca?: string) {
  return createClient(
    MACPRuntimeService,
    createGrpcTransport({
      baseUrl: target.url,
      ...(ca === undefined ? {} : { nodeOptions: { ca } }),
    }),
  );
}

/** The error a call failed with, or undefined if it succeeded. */
function failureOf(call: Promise<unknown>): Promise<ConnectError | undefined> {
  return withTimeout(
    call.then(
      () => undefined,
      (error: unknown) => ConnectError.from(error),
    ),
    GENEROUS_MS,
    "the call to end",
  );
}

const headersFor = (agent: string, name: string) => ({ ...bearer(agent), "x-call": name });

/** A ListSessions call by alice over a bare HTTP/2 session, which can be cancelled. */
function rawListSessions(
  session: http2.ClientHttp2Session,
  name: string,
): { status: Promise<number>; cancel(): void } {
  const stream = session.request(
    grpcRequestHeaders("/macp.v1.MACPRuntimeService/ListSessions", headersFor("alice", name)),
  );
  // An empty request message.
  stream.end(Buffer.alloc(5));
  stream.on("data", () => {});
  const status = new Promise<number>((resolve, reject) => {
    stream.on("trailers", (trailers) => resolve(Number(trailers["grpc-status"])));
    stream.on("close", () => reject(new Error(`${name} ended without trailers`)));
  });
  status.catch(() => {});
  return { status, cancel: () => stream.close(http2.constants.NGHTTP2_CANCEL) };
}

describe.each(GRPC_SERVERS)("%s", (_name, startServer) => {
  /** Starts the server with a held authenticator and `options`. */
  async function startHeld(options: Partial<MacpServerOptions>) {
    const gate = heldAuthenticator();
    server = await startServer({
      runtime: newRuntime(),
      authenticate: gate.authenticate,
      port: 0,
      ...options,
    });
    return { gate, target: server };
  }

  describe("concurrency limit per connection", () => {
    async function atMostTheLimitAtOnce(tls?: { cert: string; key: string }): Promise<void> {
      const { gate, target } = await startHeld({
        concurrencyLimitPerConnection: 2,
        ...(tls === undefined ? {} : { tls }),
      });
      const client = clientOf(target, tls?.cert);
      const calls = [1, 2, 3, 4, 5, 6].map((n) =>
        client.listSessions({}, { headers: headersFor("alice", `call ${n}`) }),
      );
      await gate.untilInside(2);
      await sleep(SETTLE_MS);
      expect(gate.counts.inside).toBe(2);
      gate.open();
      const answers = await withTimeout(Promise.all(calls), GENEROUS_MS, "every call");
      expect(answers).toHaveLength(6);
      expect(gate.seen).toHaveLength(6);
      expect(gate.counts.most).toBe(2);
    }

    it("lets at most the limit into the handler at once; the rest wait and all complete", async () => {
      await atMostTheLimitAtOnce();
    });

    it.skipIf(!hasOpenssl())("applies the limit on TLS connections too", async () => {
      await atMostTheLimitAtOnce(selfSignedCertificate());
    });

    it("takes a waiting call its client cancels out of the queue", async () => {
      const { gate, target } = await startHeld({ concurrencyLimitPerConnection: 1 });
      const session = http2.connect(target.url);
      session.on("error", () => {});
      try {
        const first = rawListSessions(session, "first");
        await gate.untilInside(1);
        const cancelled = rawListSessions(session, "cancelled");
        await sleep(SETTLE_MS);
        cancelled.cancel();
        // The server acknowledges the ping after it has processed the cancel.
        await new Promise<void>((resolve, reject) =>
          session.ping((error) => (error === null ? resolve() : reject(error))),
        );
        const third = rawListSessions(session, "third");
        gate.open();
        expect(await withTimeout(first.status, GENEROUS_MS, "the first call")).toBe(0);
        expect(await withTimeout(third.status, GENEROUS_MS, "the third call")).toBe(0);
        // The cancelled call's handler never ran, and it took no slot with it.
        expect(gate.seen).toEqual(["first", "third"]);
      } finally {
        session.destroy();
      }
    });

    it("does not count open streams (StreamSession, watches) against the limit", async () => {
      server = await startServer({
        runtime: newRuntime(),
        authenticate: devAuthenticate,
        port: 0,
        concurrencyLimitPerConnection: 1,
        requestTimeoutMs: 200,
      });
      const client = clientOf(server);
      const abort = new AbortController();
      try {
        const frames = pushable<StreamSessionRequest>();
        const stream = new Reader(
          client.streamSession(frames, { headers: bearer("coordinator"), signal: abort.signal }),
        );
        const watches = [1, 2].map(
          () =>
            new Reader(
              client.watchSessions({}, { headers: bearer("coordinator"), signal: abort.signal }),
            ),
        );
        // The streams sit silent for several request timeouts.
        await sleep(3 * 200);
        const sessionId = newSessionId();
        frames.push(
          create(StreamSessionRequestSchema, {
            envelope: sessionStart(sessionId, "coordinator", ["alice"]),
          }),
        );
        expect((await stream.next()).response.case).toBe("envelope");
        for (const watch of watches) {
          let event = (await watch.next()).event;
          while (event?.session?.sessionId !== sessionId) event = (await watch.next()).event;
          expect(event.eventType).toBe(SessionLifecycleEvent_EventType.CREATED);
        }
        const answer = await withTimeout(
          client.listSessions({}, { headers: bearer("coordinator") }),
          GENEROUS_MS,
          "a unary call beside the open streams",
        );
        expect(answer.sessions.map((session) => session.sessionId)).toContain(sessionId);
      } finally {
        abort.abort();
      }
    });

    it("ends waiting calls with UNAVAILABLE when the server shuts down", async () => {
      const { gate, target } = await startHeld({ concurrencyLimitPerConnection: 1 });
      const client = clientOf(target);
      const first = failureOf(client.listSessions({}, { headers: headersFor("stuck", "first") }));
      await gate.untilInside(1);
      const waiting = failureOf(
        client.listSessions({}, { headers: headersFor("alice", "waiting") }),
      );
      await sleep(SETTLE_MS);
      const closed = target.close({ drainMs: 200 });
      expect((await waiting)?.code).toBe(Code.Unavailable);
      await withTimeout(closed, GENEROUS_MS, "the server to close");
      expect(await first).toBeInstanceOf(ConnectError);
      expect(gate.seen).toEqual(["first"]);
    });
  });

  describe("request timeout", () => {
    it("ends a unary call whose handler never answers with CANCELLED", async () => {
      const { target } = await startHeld({ requestTimeoutMs: 300 });
      const failure = await failureOf(
        clientOf(target).listSessions({}, { headers: headersFor("stuck", "stuck") }),
      );
      expect(failure?.code).toBe(Code.Canceled);
    });

    it("frees the slot of a call it ends, and ends calls waiting for a slot", async () => {
      const { gate, target } = await startHeld({
        requestTimeoutMs: 300,
        concurrencyLimitPerConnection: 1,
      });
      gate.open();
      const client = clientOf(target);
      const stuck = failureOf(client.listSessions({}, { headers: headersFor("stuck", "stuck") }));
      await gate.untilInside(1);
      const waiting = failureOf(
        client.listSessions({}, { headers: headersFor("stuck", "waiting") }),
      );
      expect((await stuck)?.code).toBe(Code.Canceled);
      expect((await waiting)?.code).toBe(Code.Canceled);
      // The stuck calls hold no slot any more: the connection still serves.
      const answer = await withTimeout(
        client.listSessions({}, { headers: headersFor("alice", "after") }),
        GENEROUS_MS,
        "a call after the timeouts",
      );
      expect(answer.sessions).toEqual([]);
    });
  });
});
