// MACP_INSPECTOR=1 on the real server: the page and the InspectorService on
// the runtime's port, off by default.

import * as http2 from "node:http2";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { inspector, MACPRuntimeService } from "@macp/proto";
import { afterEach, describe, expect, it } from "vitest";
import { envelope, newSessionId, sessionStartPayload } from "../src/examples/support.js";
import type { RunningRuntime } from "../src/start-runtime.js";
import { httpUrlOf, startTestRuntime } from "./helpers.js";

const DECISION = "macp.mode.decision.v1";
let running: RunningRuntime | undefined;
afterEach(async () => {
  await running?.close({ drainMs: 0 });
  running = undefined;
});

function get(url: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(url);
    session.on("error", reject);
    const request = session.request({ ":path": path });
    let body = "";
    let status = 0;
    request.setEncoding("utf8");
    request.on("response", (headers) => {
      status = Number(headers[":status"]);
    });
    request.on("data", (chunk: string) => {
      body += chunk;
    });
    request.on("end", () => {
      session.close();
      resolve({ status, body });
    });
    request.on("error", reject);
    request.end();
  });
}

describe("MACP_INSPECTOR", () => {
  it("serves nothing extra by default", async () => {
    running = await startTestRuntime();
    expect((await get(httpUrlOf(running), "/inspector/")).status).toBe(404);
  });

  it("serves the page and follows a session through the InspectorService", async () => {
    running = await startTestRuntime({ MACP_INSPECTOR: "1" });
    const page = await get(httpUrlOf(running), "/inspector/");
    expect(page.status).toBe(200);
    expect(page.body).toContain("<title>MACP inspector</title>");
    const script = /src="\.\/(assets\/[^"]+\.js)"/.exec(page.body)?.[1];
    expect((await get(httpUrlOf(running), `/inspector/${script}`)).status).toBe(200);

    const sessionManager = new Http2SessionManager(httpUrlOf(running));
    const transport = createGrpcTransport({ baseUrl: httpUrlOf(running), sessionManager });
    const macp = createClient(MACPRuntimeService, transport);
    const watcher = createClient(inspector.InspectorService, transport);
    const as = (agent: string, signal?: AbortSignal) => ({
      headers: { authorization: `Bearer ${agent}` },
      ...(signal ? { signal } : {}),
    });
    try {
      const sessionId = newSessionId();
      const start = envelope({
        mode: DECISION,
        messageType: "SessionStart",
        sessionId,
        sender: "lead",
        payload: sessionStartPayload({ intent: "pick", participants: ["alice"] }),
      });
      expect((await macp.send({ envelope: start }, as("lead"))).ack?.ok).toBe(true);
      const abort = new AbortController();
      const seen: string[] = [];
      for await (const item of watcher.watchSession({ sessionId }, as("alice", abort.signal))) {
        seen.push(item.item.case ?? "");
        if (item.item.case === "entry") {
          expect(JSON.parse(item.item.value.payloadJson).participants).toEqual(["alice"]);
          break;
        }
      }
      abort.abort();
      expect(seen).toEqual(["snapshot", "entry"]);
    } finally {
      sessionManager.abort();
    }
  });
});
