// MACP_WORKERS: the built executable forks server processes that share one
// port and one PostgreSQL database, and behave as one runtime.

import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { MACPRuntimeService, SessionState } from "@macp/proto";
import { startThrowawayPostgres, type ThrowawayPostgres } from "@macp/store-postgres/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { envelope, newSessionId, sessionStartPayload } from "../src/examples/support.js";
import { devEnv, listeningUrl, MAIN_JS, REPO_DIR, spawnNode } from "./helpers.js";

const DECISION = "macp.mode.decision.v1";
const as = (agent: string) => ({ headers: { authorization: `Bearer ${agent}` } });
let db: ThrowawayPostgres;

beforeAll(async () => {
  execFileSync(join(REPO_DIR, "node_modules", ".bin", "tsc"), ["-b", "packages/runtime"], {
    cwd: REPO_DIR,
    stdio: "pipe",
  });
  db = await startThrowawayPostgres();
}, 180_000);

afterAll(async () => {
  await db?.stop();
});

describe("MACP_WORKERS", () => {
  it("serves one runtime from several processes on one port and stops them all on SIGTERM", async () => {
    const url = await db.createDatabase("workers");
    const child = spawnNode(
      MAIN_JS,
      [],
      devEnv({
        MACP_MEMORY_ONLY: undefined,
        MACP_STORAGE_BACKEND: "postgres",
        MACP_POSTGRES_URL: url,
        MACP_WORKERS: "2",
        MACP_LOG_LEVEL: "info",
      }),
    );
    try {
      await child.waitForOutput("listening", 60_000);
      const address = listeningUrl(child.stdout());
      // A session started through one connection is served through fresh ones,
      // which the primary hands to either worker.
      const sessionId = newSessionId();
      const started = await withClient(address, (client) =>
        client.send(
          {
            envelope: envelope({
              mode: DECISION,
              sessionId,
              sender: "agent://a",
              messageType: "SessionStart",
              payload: sessionStartPayload({ intent: "workers", participants: ["agent://a"] }),
            }),
          },
          as("agent://a"),
        ),
      );
      expect(started.ack?.ok).toBe(true);
      for (let i = 0; i < 6; i++) {
        const { metadata } = await withClient(address, (client) =>
          client.getSession({ sessionId }, as("agent://a")),
        );
        expect(metadata?.state).toBe(SessionState.OPEN);
      }
      child.child.kill("SIGTERM");
      expect(await child.exited).toBe(0);
    } finally {
      child.child.kill("SIGKILL");
    }
  }, 120_000);
});

function withClient<T>(
  url: string,
  body: (client: ReturnType<typeof createClient<typeof MACPRuntimeService>>) => Promise<T>,
): Promise<T> {
  const sessionManager = new Http2SessionManager(url);
  const client = createClient(
    MACPRuntimeService,
    createGrpcTransport({ baseUrl: url, sessionManager }),
  );
  return body(client).finally(() => sessionManager.abort());
}
