// Regression tests: connections and requests were never timed out (silent TCP
// sockets and half-sent requests stayed open indefinitely), the per-connection
// concurrency limit was not applied, and a Connect request whose binary body
// does not decode answered HTTP 500. Timeouts are short here; a test fails only
// if something is not closed within a generous bound, or if a long-lived stream
// is cut.

import * as http2 from "node:http2";
import * as net from "node:net";
import { create, toBinary } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { type MacpServer, type MacpServerOptions, startMacpServer } from "@macp/connect/node";
import {
  InitializeRequestSchema,
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
  http1Request,
  newRuntime,
  newSessionId,
  pushable,
  Reader,
  sessionStart,
  sleep,
  withTimeout,
} from "./support.js";

const INITIALIZE = "/macp.v1.MACPRuntimeService/Initialize";
/** The bound within which a timed-out connection or request must be gone. */
const GENEROUS_MS = 10_000;
const GRPC_CANCELLED = 1;

let server: GrpcServer | undefined;

afterEach(async () => {
  await server?.close({ drainMs: 0 });
  server = undefined;
});

/** Starts a server on a free port over a fresh runtime, closed after the test. */
async function startWith<S extends GrpcServer>(
  startServer: (options: MacpServerOptions) => Promise<S>,
  options: Partial<MacpServerOptions>,
): Promise<S> {
  const started = await startServer({
    runtime: newRuntime(),
    authenticate: devAuthenticate,
    port: 0,
    ...options,
  });
  server = started;
  return started;
}

function start(options: Partial<MacpServerOptions> = {}): Promise<MacpServer> {
  return startWith(startMacpServer, options);
}

/** Connects a raw TCP socket, writes `bytes`, and resolves when the server closes it. */
async function closedByServer(target: GrpcServer, bytes: Buffer): Promise<void> {
  const socket = net.connect(target.address.port, target.address.host);
  socket.on("data", () => {});
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  socket.on("error", () => {});
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  if (bytes.length > 0) socket.write(bytes);
  try {
    await withTimeout(closed, GENEROUS_MS, "the server to close the connection");
  } finally {
    socket.destroy();
  }
}

const initializeMessage = toBinary(
  InitializeRequestSchema,
  create(InitializeRequestSchema, { supportedProtocolVersions: ["1.0"] }),
);

function grpcFrame(message: Uint8Array): Buffer {
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

interface H2Answer {
  readonly status: number;
  readonly grpcStatus: number;
}

/** A gRPC call on `session` whose request body is sent only when `finish` is called. */
function heldGrpcCall(session: http2.ClientHttp2Session): {
  answer: Promise<H2Answer>;
  finish(): void;
} {
  const stream = session.request(grpcRequestHeaders(INITIALIZE));
  stream.write(grpcFrame(initializeMessage));
  const answer = new Promise<H2Answer>((resolve, reject) => {
    let status = 0;
    let grpcStatus = Number.NaN;
    stream.on("response", (headers) => {
      status = Number(headers[":status"]);
      if (headers["grpc-status"] !== undefined) grpcStatus = Number(headers["grpc-status"]);
    });
    // The answer is complete with its trailers, even while our side stays open.
    stream.on("trailers", (trailers) => {
      resolve({ status, grpcStatus: Number(trailers["grpc-status"]) });
    });
    stream.on("data", () => {});
    stream.on("close", () => resolve({ status, grpcStatus }));
    stream.on("error", reject);
  });
  return { answer, finish: () => stream.end() };
}

/** Makes one call on `session`, then waits for the server to close the idle session. */
async function closedOnceIdle(session: http2.ClientHttp2Session): Promise<void> {
  const closed = new Promise<void>((resolve) => session.once("close", () => resolve()));
  session.on("error", () => {});
  const call = heldGrpcCall(session);
  call.finish();
  expect((await call.answer).grpcStatus).toBe(0);
  await withTimeout(closed, GENEROUS_MS, "the server to close the idle session");
}

// What a gRPC client sees of connection timeouts is the same on both listeners.
describe.each(GRPC_SERVERS)("%s", (_name, startServer) => {
  function startOn(options: Partial<MacpServerOptions> = {}): Promise<GrpcServer> {
    return startWith(startServer, options);
  }

  describe("idle connections", () => {
    it("closes a TCP connection that never sends a byte", async () => {
      const target = await startOn({ idleTimeoutMs: 100 });
      await closedByServer(target, Buffer.alloc(0));
    });

    it("closes a connection that sends the HTTP/2 preface and nothing more", async () => {
      const target = await startOn({ idleTimeoutMs: 100 });
      await closedByServer(target, Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1"));
    });

    it("closes an HTTP/1.1 connection whose request headers never end", async () => {
      const target = await startOn({ idleTimeoutMs: 100 });
      await closedByServer(target, Buffer.from(`POST ${INITIALIZE} HTTP/1.1\r\nHost: x\r\n`));
    });

    it("closes an HTTP/2 connection once its calls are done and it stays idle", async () => {
      const target = await startOn({ idleTimeoutMs: 100 });
      await closedOnceIdle(http2.connect(target.url));
    });

    it("lets a connection go (GOAWAY) only once its last open stream has ended", async () => {
      const target = await startOn({ idleTimeoutMs: 100 });
      const session = http2.connect(target.url);
      session.on("error", () => {});
      let goaway = false;
      const letGo = new Promise<void>((resolve) =>
        session.once("goaway", () => {
          goaway = true;
          resolve();
        }),
      );
      try {
        const watch = session.request(
          grpcRequestHeaders("/macp.v1.MACPRuntimeService/WatchSessions", bearer("coordinator")),
        );
        watch.on("error", () => {});
        // An empty WatchSessionsRequest; the watch then stays open without a word.
        watch.end(Buffer.alloc(5));
        await sleep(1000);
        expect(goaway).toBe(false);
        expect(session.closed).toBe(false);
        watch.close(http2.constants.NGHTTP2_CANCEL);
        await withTimeout(letGo, GENEROUS_MS, "GOAWAY once the watch was over");
      } finally {
        session.destroy();
      }
    });
  });

  describe.skipIf(!hasOpenssl())("idle connections on the TLS port", () => {
    it("closes an HTTP/2 connection over TLS once its calls are done and it stays idle", async () => {
      const tls = selfSignedCertificate();
      const target = await startOn({ idleTimeoutMs: 100, tls });
      await closedOnceIdle(http2.connect(target.url, { ca: tls.cert }));
    });

    it("keeps serving after a TLS client resets its connection mid-session", async () => {
      const tls = selfSignedCertificate();
      const target = await startOn({ tls });
      const { connect } = await import("node:tls");
      for (let attempt = 0; attempt < 3; attempt++) {
        const raw = net.connect(target.address.port, target.address.host);
        raw.on("error", () => {});
        const secure = connect({
          socket: raw,
          host: target.address.host,
          ca: tls.cert,
          ALPNProtocols: ["h2"],
        });
        secure.on("error", () => {});
        await withTimeout(
          new Promise((resolve) => secure.once("secureConnect", resolve)),
          GENEROUS_MS,
          "the TLS handshake",
        );
        // Half an HTTP/2 preface, then a TCP reset under the TLS layer.
        secure.write("PRI * HTTP/2.0\r\n");
        await sleep(50);
        raw.resetAndDestroy();
      }
      await sleep(200);
      const session = http2.connect(target.url, { ca: tls.cert });
      session.on("error", () => {});
      try {
        const call = heldGrpcCall(session);
        call.finish();
        expect((await withTimeout(call.answer, GENEROUS_MS, "an answer")).grpcStatus).toBe(0);
      } finally {
        session.destroy();
      }
    });

    it("closes a TCP connection that never starts the TLS handshake", async () => {
      const target = await startOn({ idleTimeoutMs: 100, tls: selfSignedCertificate() });
      await closedByServer(target, Buffer.alloc(0));
    });

    it("closes an HTTP/1.1 connection over TLS that never sends a request", async () => {
      const tls = selfSignedCertificate();
      const target = await startOn({ idleTimeoutMs: 100, tls });
      const { connect } = await import("node:tls");
      const socket = connect({
        host: target.address.host,
        port: target.address.port,
        ca: tls.cert,
        ALPNProtocols: ["http/1.1"],
      });
      socket.on("error", () => {});
      const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
      try {
        await withTimeout(closed, GENEROUS_MS, "the server to close the TLS connection");
      } finally {
        socket.destroy();
      }
    });
  });

  describe("long-lived streams", () => {
    it("does not cut long-lived streams: StreamSession and the watches outlive it", async () => {
      const target = await startOn({ requestTimeoutMs: 100, idleTimeoutMs: 100 });
      const client = createClient(MACPRuntimeService, createGrpcTransport({ baseUrl: target.url }));
      const abort = new AbortController();
      try {
        const frames = pushable<StreamSessionRequest>();
        const stream = new Reader(
          client.streamSession(frames, { headers: bearer("coordinator"), signal: abort.signal }),
        );
        const watch = new Reader(
          client.watchSessions({}, { headers: bearer("coordinator"), signal: abort.signal }),
        );
        // Both streams sit silent for many timeouts' worth.
        await sleep(1000);
        const sessionId = newSessionId();
        frames.push(
          create(StreamSessionRequestSchema, {
            envelope: sessionStart(sessionId, "coordinator", ["alice"]),
          }),
        );
        const echoed = await stream.next();
        expect(echoed.response.case).toBe("envelope");
        let event = (await watch.next()).event;
        while (event?.session?.sessionId !== sessionId) event = (await watch.next()).event;
        expect(event.eventType).toBe(SessionLifecycleEvent_EventType.CREATED);
      } finally {
        abort.abort();
      }
    });
  });
});

describe("request timeout", () => {
  it("ends a gRPC call whose request never ends with CANCELLED", async () => {
    const target = await start({ requestTimeoutMs: 100 });
    const session = http2.connect(target.url);
    session.on("error", () => {});
    try {
      const call = heldGrpcCall(session);
      const answer = await withTimeout(call.answer, GENEROUS_MS, "the call to time out");
      expect(answer.grpcStatus).toBe(GRPC_CANCELLED);
    } finally {
      session.destroy();
    }
  });

  it("answers a half-sent Connect request over HTTP/1.1 with canceled and closes the connection", async () => {
    const target = await start({ requestTimeoutMs: 100 });
    const body = JSON.stringify({ supportedProtocolVersions: ["1.0"] });
    const answer = await withTimeout(
      http1Request(`${target.url}${INITIALIZE}`, {
        headers: { "content-type": "application/json" },
        body,
        announcedLength: body.length + 10,
      }),
      GENEROUS_MS,
      "the request to time out",
    );
    expect(answer.status).toBe(499);
    expect(JSON.parse(answer.body.toString("utf8"))).toMatchObject({ code: "canceled" });
    await withTimeout(answer.closed, GENEROUS_MS, "the connection to close");
  });
});

// Open streams not counting against the limit is tested on both listeners in listener-limits.test.ts.
describe("concurrency limit per connection", () => {
  it("queues requests beyond the limit instead of refusing them", async () => {
    const target = await start({ concurrencyLimitPerConnection: 1 });
    const session = http2.connect(target.url);
    session.on("error", () => {});
    try {
      const first = heldGrpcCall(session);
      const second = heldGrpcCall(session);
      second.finish();
      let secondDone = false;
      void second.answer.then(() => {
        secondDone = true;
      });
      // The first call holds the connection's only slot while its request is open.
      await sleep(300);
      expect(secondDone).toBe(false);
      first.finish();
      expect((await withTimeout(first.answer, GENEROUS_MS, "the first call")).grpcStatus).toBe(0);
      expect((await withTimeout(second.answer, GENEROUS_MS, "the second call")).grpcStatus).toBe(0);
    } finally {
      session.destroy();
    }
  });
});

describe("an undecodable Connect request body", () => {
  const postBinary = (target: MacpServer, body: Uint8Array) =>
    http1Request(`${target.url}${INITIALIZE}`, {
      headers: { "content-type": "application/proto" },
      body,
    });

  it("answers invalid_argument (HTTP 400), not internal (HTTP 500)", async () => {
    const target = await start();
    // Field 31 with wire type 7, which does not exist.
    const answer = await postBinary(target, Buffer.from([0xff, 0xff, 0xff]));
    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.body.toString("utf8"))).toMatchObject({ code: "invalid_argument" });
  });

  it("still answers a well-formed binary request", async () => {
    const target = await start();
    const answer = await postBinary(target, initializeMessage);
    expect(answer.status).toBe(200);
  });
});
