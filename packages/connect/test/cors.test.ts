// CORS on startMacpServer: off unless asked for; when on, preflights from an
// allowed origin are answered with what gRPC-Web and Connect clients need,
// other origins get no access-control-allow-origin, and real responses expose
// the gRPC status headers to the page.

import * as http from "node:http";
import { type MacpServer, startMacpServer } from "@macp/connect/node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { devAuthenticate, newRuntime } from "./support.js";

const INITIALIZE = "/macp.v1.MACPRuntimeService/Initialize";
const ALLOWED = "http://console.example.test:5173";

function request(
  url: string,
  method: string,
  headers: Record<string, string>,
  body?: string,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const outgoing = http.request(
      `${url}${INITIALIZE}`,
      { method, headers, agent: false },
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
    outgoing.end(body);
  });
}

function preflight(url: string, origin: string) {
  return request(url, "OPTIONS", {
    origin,
    "access-control-request-method": "POST",
    "access-control-request-headers": "content-type,connect-protocol-version,authorization",
  });
}

const initializeBody = JSON.stringify({ supportedProtocolVersions: ["1.0"] });

describe("CORS, with allowed origins configured", () => {
  let server: MacpServer;

  beforeAll(async () => {
    server = await startMacpServer({
      runtime: newRuntime(),
      authenticate: devAuthenticate,
      port: 0,
      cors: { allowedOrigins: [ALLOWED] },
    });
  });

  afterAll(async () => {
    await server.close({ drainMs: 1000 });
  });

  it("answers a preflight from an allowed origin", async () => {
    const response = await preflight(server.url, ALLOWED);
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
    const response = await preflight(server.url, "http://evil.example.test");
    expect(response.headers["access-control-allow-origin"]).toBeUndefined();
  });

  it("marks real responses for the allowed origin and exposes the gRPC status headers", async () => {
    const response = await request(
      server.url,
      "POST",
      { origin: ALLOWED, "content-type": "application/json" },
      initializeBody,
    );
    expect(response.status).toBe(200);
    expect(JSON.parse(response.body)).toMatchObject({ selectedProtocolVersion: "1.0" });
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
    const response = await request(
      server.url,
      "POST",
      { origin: "http://evil.example.test", "content-type": "application/json" },
      initializeBody,
    );
    expect(response.headers["access-control-allow-origin"]).toBeUndefined();
  });
});

describe("CORS, with any origin allowed", () => {
  let server: MacpServer;

  beforeAll(async () => {
    server = await startMacpServer({
      runtime: newRuntime(),
      authenticate: devAuthenticate,
      port: 0,
      cors: { allowedOrigins: ["*"] },
    });
  });

  afterAll(async () => {
    await server.close({ drainMs: 1000 });
  });

  it("answers every origin's preflight with a wildcard", async () => {
    const response = await preflight(server.url, "http://anywhere.example.test");
    expect(response.status).toBe(204);
    expect(response.headers["access-control-allow-origin"]).toBe("*");
  });
});

describe("CORS, by default", () => {
  let server: MacpServer;

  beforeAll(async () => {
    server = await startMacpServer({
      runtime: newRuntime(),
      authenticate: devAuthenticate,
      port: 0,
    });
  });

  afterAll(async () => {
    await server.close({ drainMs: 1000 });
  });

  it("is off: a preflight gets no access-control headers", async () => {
    const response = await preflight(server.url, ALLOWED);
    expect(response.status).not.toBe(204);
    expect(
      Object.keys(response.headers).filter((name) => name.startsWith("access-control-")),
    ).toEqual([]);
  });

  it("is off: a real response carries no access-control headers", async () => {
    const response = await request(
      server.url,
      "POST",
      { origin: ALLOWED, "content-type": "application/json" },
      initializeBody,
    );
    expect(response.status).toBe(200);
    expect(
      Object.keys(response.headers).filter((name) => name.startsWith("access-control-")),
    ).toEqual([]);
  });
});
