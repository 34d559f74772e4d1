import { connect } from "node:http2";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { MACPRuntimeService } from "@macp/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runDecision, runQuorum } from "../src/examples/catalog.js";
import { type ExampleApp, exampleAppOptionsFromEnv } from "../src/examples/embedded.js";
import { startExpressApp } from "../src/examples/express-app.js";
import { startFastifyApp } from "../src/examples/fastify-app.js";
import {
  envelope,
  newSessionId,
  SessionState,
  sessionStartPayload,
} from "../src/examples/support.js";
import { buildRuntime, PACKAGE_DIR, spawnNode } from "./helpers.js";

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

describe("the example apps run from the command line", () => {
  beforeAll(buildRuntime, 120_000);

  it.each([
    ["fastify-app.js", "Fastify"],
    ["express-app.js", "Express"],
  ])("%s listens on PORT and stops on SIGTERM", async (script, name) => {
    const child = spawnNode(join(PACKAGE_DIR, "dist", "examples", script), [], { PORT: "0" });
    try {
      await child.waitForOutput("listening on", 30_000);
      const url = /listening on (http:\/\/127\.0\.0\.1:(\d+))/.exec(child.stdout());
      expect(child.stdout()).toContain(name);
      expect(Number(url?.[2])).toBeGreaterThan(0);
      expect(url?.[2]).not.toBe("8080");
    } finally {
      child.child.kill("SIGTERM");
    }
    expect(await child.exited).toBe(0);
  });

  it("refuses a PORT that is not a port number, with exit 2", async () => {
    const child = spawnNode(join(PACKAGE_DIR, "dist", "examples", "express-app.js"), [], {
      PORT: "80a",
    });
    expect(await child.exited).toBe(2);
    expect(child.stderr()).toContain('PORT="80a"');
  });

  it("reads HOST and PORT, and defaults to neither", () => {
    expect(exampleAppOptionsFromEnv({})).toEqual({ options: {} });
    expect(exampleAppOptionsFromEnv({ HOST: "::1", PORT: "9090" })).toEqual({
      options: { host: "::1", port: 9090 },
    });
    expect(exampleAppOptionsFromEnv({ PORT: "65536" })).toHaveProperty("error");
    expect(exampleAppOptionsFromEnv({ PORT: "-1" })).toHaveProperty("error");
  });
});
