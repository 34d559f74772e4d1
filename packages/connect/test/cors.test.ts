// CORS on startMacpServer: off unless asked for; when on, preflights from an
// allowed origin are answered with what gRPC-Web and Connect clients need,
// other origins get no access-control-allow-origin, and real responses expose
// the gRPC status headers to the page.

import { type MacpCorsOptions, type MacpServer, startMacpServer } from "@macp/connect/node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { devAuthenticate, http1Request, newRuntime } from "./support.js";

const INITIALIZE = "/macp.v1.MACPRuntimeService/Initialize";
const ALLOWED = "http://console.example.test:5173";

/** A server for the enclosing describe block, with `cors` as given. */
function serverWith(cors?: MacpCorsOptions): () => MacpServer {
  let server: MacpServer;
  beforeAll(async () => {
    server = await startMacpServer({
      runtime: newRuntime(),
      authenticate: devAuthenticate,
      port: 0,
      ...(cors === undefined ? {} : { cors }),
    });
  });
  afterAll(async () => {
    await server.close({ drainMs: 1000 });
  });
  return () => server;
}

function preflight(server: MacpServer, origin: string) {
  return http1Request(`${server.url}${INITIALIZE}`, {
    method: "OPTIONS",
    headers: {
      origin,
      "access-control-request-method": "POST",
      "access-control-request-headers": "content-type,connect-protocol-version,authorization",
    },
  });
}

function initialize(server: MacpServer, origin: string) {
  return http1Request(`${server.url}${INITIALIZE}`, {
    headers: { origin, "content-type": "application/json" },
    body: JSON.stringify({ supportedProtocolVersions: ["1.0"] }),
  });
}

function accessControlHeaders(headers: Record<string, unknown>): string[] {
  return Object.keys(headers).filter((name) => name.startsWith("access-control-"));
}

describe("CORS, with allowed origins configured", () => {
  const server = serverWith({ allowedOrigins: [ALLOWED] });

  it("answers a preflight from an allowed origin", async () => {
    const response = await preflight(server(), ALLOWED);
    expect(response.status).toBe(204);
    expect(response.headers["access-control-allow-origin"]).toBe(ALLOWED);
    expect(response.headers["access-control-allow-methods"]).toContain("POST");
    const allowedHeaders = String(response.headers["access-control-allow-headers"]).toLowerCase();
    for (const header of [
      "content-type",
      "connect-protocol-version",
      "x-grpc-web",
      "grpc-timeout",
      "authorization",
      "x-macp-token",
    ]) {
      expect(allowedHeaders).toContain(header);
    }
  });

  it("gives a preflight from another origin no access-control-allow-origin", async () => {
    const response = await preflight(server(), "http://evil.example.test");
    expect(response.headers["access-control-allow-origin"]).toBeUndefined();
  });

  it("marks real responses for the allowed origin and exposes the gRPC status headers", async () => {
    const response = await initialize(server(), ALLOWED);
    expect(response.status).toBe(200);
    expect(JSON.parse(response.body.toString("utf8"))).toMatchObject({
      selectedProtocolVersion: "1.0",
    });
    expect(response.headers["access-control-allow-origin"]).toBe(ALLOWED);
    const exposed = String(response.headers["access-control-expose-headers"]).toLowerCase();
    for (const header of [
      "grpc-status",
      "grpc-message",
      "grpc-status-details-bin",
      "macp-error-details-bin",
    ]) {
      expect(exposed).toContain(header);
    }
  });

  it("does not mark responses for another origin", async () => {
    const response = await initialize(server(), "http://evil.example.test");
    expect(response.headers["access-control-allow-origin"]).toBeUndefined();
  });
});

describe("CORS, with any origin allowed", () => {
  const server = serverWith({ allowedOrigins: ["*"] });

  it("answers every origin's preflight with a wildcard", async () => {
    const response = await preflight(server(), "http://anywhere.example.test");
    expect(response.status).toBe(204);
    expect(response.headers["access-control-allow-origin"]).toBe("*");
  });
});

describe("CORS, by default", () => {
  const server = serverWith();

  it("is off: a preflight gets no access-control headers", async () => {
    const response = await preflight(server(), ALLOWED);
    expect(response.status).not.toBe(204);
    expect(accessControlHeaders(response.headers)).toEqual([]);
  });

  it("is off: a real response carries no access-control headers", async () => {
    const response = await initialize(server(), ALLOWED);
    expect(response.status).toBe(200);
    expect(accessControlHeaders(response.headers)).toEqual([]);
  });
});
