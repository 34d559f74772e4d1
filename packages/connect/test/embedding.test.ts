// docs/guides/embedding.md, run as written (embedding-example.ts is its code).

import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import {
  MACPRuntimeService,
  SessionState,
  type StreamSessionRequest,
  StreamSessionRequestSchema,
} from "@macp/proto";
import { afterAll, describe, expect, it } from "vitest";
import { startService } from "./embedding-example.js";
import { bearer, newSessionId, proposal, pushable, Reader, sessionStart } from "./support.js";

const dataDir = mkdtempSync(join(tmpdir(), "macp-embedding-"));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

async function get(port: number, path: string): Promise<{ status: number; body: string }> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  try {
    return await new Promise((resolve, reject) => {
      const request = session.request({ ":path": path });
      let status = 0;
      let body = "";
      request.on("response", (headers) => {
        status = Number(headers[":status"]);
      });
      request.setEncoding("utf8");
      request.on("data", (chunk: string) => {
        body += chunk;
      });
      request.on("end", () => resolve({ status, body }));
      request.on("error", reject);
      request.end();
    });
  } finally {
    session.close();
  }
}

describe("the embedding guide", () => {
  it("shows the code this test runs", () => {
    const guide = readFileSync(
      new URL("../../../docs/guides/embedding.md", import.meta.url),
      "utf8",
    );
    const example = readFileSync(new URL("./embedding-example.ts", import.meta.url), "utf8");
    const block = /```ts\n(import \* as http2 from "node:http2";[\s\S]*?)```/.exec(guide)?.[1];
    expect(block).toBeDefined();
    expect(example.endsWith(block ?? "")).toBe(true);
  });

  it("serves MACP next to the existing routes, shuts down cleanly and recovers", async () => {
    const service = await startService({ port: 0, dataDir });
    const { port } = service.server.address() as AddressInfo;
    expect(await get(port, "/status")).toEqual({ status: 200, body: '{"ok":true}' });
    expect((await get(port, "/elsewhere")).status).toBe(404);

    const client = createClient(
      MACPRuntimeService,
      createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}` }),
    );
    const sessionId = newSessionId();
    const start = await client.send(
      { envelope: sessionStart(sessionId, "coordinator", ["alice"]) },
      { headers: bearer("coordinator") },
    );
    expect(start.ack?.ok).toBe(true);
    await client.send({ envelope: proposal(sessionId, "alice") }, { headers: bearer("alice") });

    const watch = new Reader(client.watchSessions({}, { headers: bearer("alice") }));
    await watch.next();
    const frames = pushable<StreamSessionRequest>();
    const stream = new Reader(client.streamSession(frames, { headers: bearer("alice") }));
    frames.push(create(StreamSessionRequestSchema, { subscribeSessionId: sessionId }));
    await stream.next();

    const closing = service.close(2000);
    const [watchEnd, streamEnd] = await Promise.all([watch.drain(), stream.drain()]);
    expect(ConnectError.from(watchEnd.error).code).toBe(Code.Unavailable);
    expect(ConnectError.from(streamEnd.error).code).toBe(Code.Unavailable);
    frames.close(); // the client's half of the finished stream; until then its connection stays
    const started = Date.now();
    await closing;
    expect(Date.now() - started).toBeLessThan(1000);

    // The file store kept the session: a new service recovers it.
    const again = await startService({ port: 0, dataDir });
    try {
      const { port: next } = again.server.address() as AddressInfo;
      const reopened = createClient(
        MACPRuntimeService,
        createGrpcTransport({ baseUrl: `http://127.0.0.1:${next}` }),
      );
      const { metadata } = await reopened.getSession({ sessionId }, { headers: bearer("alice") });
      expect(metadata?.state).toBe(SessionState.OPEN);
      expect(metadata?.participantActivity.map((entry) => entry.participantId)).toEqual(["alice"]);
    } finally {
      await again.close(1000);
    }
  });
});
