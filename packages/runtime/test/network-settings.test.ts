// The network variables reach the listener: MACP_REQUEST_TIMEOUT_SECS ends a
// half-sent request, MACP_CORS_ORIGINS answers preflights, the plaintext
// port answers HTTP/1.1, and MACP_CONCURRENCY_LIMIT_PER_CONNECTION holds
// calls back on both listeners (regression: the gRPC listener ignored it).

import * as http from "node:http";
import * as http2 from "node:http2";
import { afterEach, describe, expect, it } from "vitest";
import type { RunningRuntime } from "../src/start-runtime.js";
import { httpUrlOf, LISTENERS, startTestRuntime } from "./helpers.js";

const INITIALIZE = "/macp.v1.MACPRuntimeService/Initialize";
const INITIALIZE_BODY = JSON.stringify({ supportedProtocolVersions: ["1.0"] });

interface Answer {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

/** An HTTP/1.1 request; `announcedLength` above the body's length leaves it half-sent. */
function request(
  url: string,
  method: string,
  headers: Record<string, string | number>,
  body = "",
  announcedLength = body.length,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const outgoing = http.request(
      `${url}${INITIALIZE}`,
      { method, agent: false, headers: { ...headers, "content-length": announcedLength } },
      (response) => {
        let text = "";
        response.setEncoding("utf8");
        response.on("data", (chunk: string) => {
          text += chunk;
        });
        response.on("end", () =>
          resolve({ status: response.statusCode ?? 0, headers: response.headers, body: text }),
        );
      },
    );
    outgoing.on("error", reject);
    if (announcedLength === body.length) outgoing.end(body);
    else outgoing.write(body);
  });
}

describe("network settings", () => {
  const running: RunningRuntime[] = [];
  const serve = async (env: Record<string, string>) => {
    const server = await startTestRuntime(env);
    running.push(server);
    return server;
  };
  afterEach(async () => {
    await Promise.all(running.splice(0).map((server) => server.close({ drainMs: 0 })));
  });

  it("answers Connect over HTTP/1.1 on the plaintext port", async () => {
    const server = await serve({});
    const answer = await request(
      httpUrlOf(server),
      "POST",
      { "content-type": "application/json" },
      INITIALIZE_BODY,
    );
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toMatchObject({ selectedProtocolVersion: "1.0" });
  });

  it("ends a half-sent request after MACP_REQUEST_TIMEOUT_SECS with canceled", async () => {
    const server = await serve({ MACP_REQUEST_TIMEOUT_SECS: "1" });
    const answer = await request(
      httpUrlOf(server),
      "POST",
      { "content-type": "application/json" },
      INITIALIZE_BODY,
      INITIALIZE_BODY.length + 10,
    );
    expect(answer.status).toBe(499);
    expect(JSON.parse(answer.body)).toMatchObject({ code: "canceled" });
  });

  it("answers preflights from the origins in MACP_CORS_ORIGINS", async () => {
    const server = await serve({ MACP_CORS_ORIGINS: "http://localhost:5173" });
    const preflight = (origin: string) =>
      request(httpUrlOf(server), "OPTIONS", {
        origin,
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type,authorization",
      });
    const allowed = await preflight("http://localhost:5173");
    expect(allowed.status).toBe(204);
    expect(allowed.headers["access-control-allow-origin"]).toBe("http://localhost:5173");
    const other = await preflight("http://elsewhere.test");
    expect(other.headers["access-control-allow-origin"]).toBeUndefined();
  });
});

/** A gRPC Initialize over `session` that resolves with its grpc-status once it ends. */
function grpcInitialize(session: http2.ClientHttp2Session, body: Buffer, end: boolean) {
  const stream = session.request({
    ":method": "POST",
    ":path": INITIALIZE,
    "content-type": "application/grpc",
    te: "trailers",
  });
  if (end) stream.end(body);
  else stream.write(body);
  stream.on("data", () => {});
  return new Promise<number>((resolve, reject) => {
    stream.on("response", (headers) => {
      if (headers["grpc-status"] !== undefined) resolve(Number(headers["grpc-status"]));
    });
    stream.on("trailers", (trailers) => resolve(Number(trailers["grpc-status"])));
    stream.on("error", reject);
  });
}

describe.each(LISTENERS)("MACP_CONCURRENCY_LIMIT_PER_CONNECTION on %s", (_name, urlOf) => {
  const running: RunningRuntime[] = [];
  afterEach(async () => {
    await Promise.all(running.splice(0).map((server) => server.close({ drainMs: 0 })));
  });

  it("holds a call back while another call of its connection has the only slot", async () => {
    const server = await startTestRuntime({
      MACP_CONCURRENCY_LIMIT_PER_CONNECTION: "1",
      MACP_REQUEST_TIMEOUT_SECS: "1",
    });
    running.push(server);
    const session = http2.connect(urlOf(server));
    session.on("error", () => {});
    try {
      const ended: string[] = [];
      // A frame announcing 100 bytes that carries 3: held until the request timeout.
      const first = grpcInitialize(session, Buffer.from([0, 0, 0, 0, 100, 1, 2, 3]), false);
      const second = grpcInitialize(session, Buffer.alloc(5), true);
      void first.then(() => ended.push("first"));
      void second.then(() => ended.push("second"));
      expect(await first).toBe(1); // CANCELLED
      await second;
      expect(ended).toEqual(["first", "second"]);
    } finally {
      session.destroy();
    }
  });
});
