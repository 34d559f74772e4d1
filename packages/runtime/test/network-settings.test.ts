// The network variables reach the listener: MACP_REQUEST_TIMEOUT_SECS ends a
// half-sent request, MACP_CORS_ORIGINS answers preflights, and the plaintext
// port answers HTTP/1.1.

import * as http from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import type { RunningRuntime } from "../src/start-runtime.js";
import { httpUrlOf, startTestRuntime } from "./helpers.js";

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
