import { connect } from "node:http2";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { MACPRuntimeService } from "@macp/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runDecision, runQuorum } from "../src/examples/catalog.js";
import type { ExampleApp } from "../src/examples/embedded.js";
import { startExpressApp } from "../src/examples/express-app.js";
import { startFastifyApp } from "../src/examples/fastify-app.js";
import {
  envelope,
  newSessionId,
  SessionState,
  sessionStartPayload,
} from "../src/examples/support.js";

const as = (agent: string) => ({ headers: { authorization: `Bearer ${agent}` } });

describe("the Fastify example app", () => {
  let app: ExampleApp;
  beforeAll(async () => {
    app = await startFastifyApp({ port: 0 });
  });
  afterAll(async () => {
    await app?.close();
  });

  it("serves gRPC: the decision and quorum example clients run against it", async () => {
    await runDecision({ endpoint: app.url, log: () => {} });
    await runQuorum({ endpoint: app.url, log: () => {} });
  });

  it("keeps its own routes next to MACP", async () => {
    // The app speaks HTTP/2 without TLS (h2c), which fetch cannot; ask with node:http2.
    const session = connect(app.url);
    try {
      const body = await new Promise<string>((resolve, reject) => {
        const request = session.request({ ":path": "/healthz" });
        let text = "";
        request.setEncoding("utf8");
        request.on("data", (chunk: string) => {
          text += chunk;
        });
        request.on("end", () => resolve(text));
        request.on("error", reject);
        request.end();
      });
      expect(JSON.parse(body)).toEqual({ status: "ok" });
    } finally {
      session.close();
    }
  });
});

describe("the Express example app", () => {
  let app: ExampleApp;
  beforeAll(async () => {
    app = await startExpressApp({ port: 0 });
  });
  afterAll(async () => {
    await app?.close();
  });

  for (const [protocol, transport] of [
    ["Connect", () => createConnectTransport({ baseUrl: app.url, httpVersion: "1.1" })],
    ["gRPC-Web", () => createGrpcWebTransport({ baseUrl: app.url, httpVersion: "1.1" })],
  ] as const) {
    it(`serves the ${protocol} protocol over HTTP/1.1`, async () => {
      const client = createClient(MACPRuntimeService, transport());
      const init = await client.initialize({ supportedProtocolVersions: ["1.0"] });
      expect(init.selectedProtocolVersion).toBe("1.0");
      const sessionId = newSessionId();
      const started = await client.send(
        {
          envelope: envelope({
            mode: "macp.mode.task.v1",
            sessionId,
            sender: "agent://planner",
            messageType: "SessionStart",
            payload: sessionStartPayload({
              intent: "via express",
              participants: ["agent://worker"],
            }),
          }),
        },
        as("agent://planner"),
      );
      expect(started.ack?.sessionState).toBe(SessionState.OPEN);
      const { metadata } = await client.getSession({ sessionId }, as("agent://worker"));
      expect(metadata?.initiator).toBe("agent://planner");
    });
  }

  it("keeps its own routes next to MACP", async () => {
    const response = await fetch(`${app.url}/healthz`);
    expect(await response.json()).toEqual({ status: "ok" });
  });
});
