// MACP_WORKERS: the executable forks server processes that share both
// listeners (gRPC on grpc-js, Connect on node:http2) and behave as one
// runtime over a shared PostgreSQL database.

import { createClient } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  Http2SessionManager,
} from "@connectrpc/connect-node";
import { decision, MACPRuntimeService } from "@macp/proto";
import { startThrowawayPostgres, type ThrowawayPostgres } from "@macp/store-postgres/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  encode,
  envelope,
  newSessionId,
  SessionState,
  sessionStartPayload,
} from "../src/examples/support.js";
import { buildRuntime, devEnv, MAIN_JS, type Spawned, spawnNode } from "./helpers.js";

const DECISION = "macp.mode.decision.v1";
const WORKERS = 2;
const as = (agent: string) => ({ headers: { authorization: `Bearer ${agent}` } });

interface Listening {
  readonly pid: number;
  readonly url: string;
  readonly httpUrl: string;
}

function listeningLines(stdout: string): Listening[] {
  return stdout
    .split("\n")
    .filter((line) => line.includes("listening"))
    .map((line) => JSON.parse(line) as Listening);
}

async function waitForListeners(child: Spawned, count: number): Promise<Listening[]> {
  for (let attempt = 0; attempt < 300; attempt++) {
    const lines = listeningLines(child.stdout());
    if (lines.length >= count) return lines;
    await Promise.race([child.exited, new Promise((resolve) => setTimeout(resolve, 100))]);
  }
  throw new Error(`not ${count} listening lines: ${child.stdout()} ${child.stderr()}`);
}

/** Starts the executable with WORKERS workers over a fresh database. */
async function startPool(database: string, overrides: Record<string, string> = {}) {
  return spawnNode(
    MAIN_JS,
    [],
    devEnv({
      MACP_MEMORY_ONLY: undefined,
      MACP_STORAGE_BACKEND: "postgres",
      MACP_POSTGRES_URL: await db.createDatabase(database),
      MACP_WORKERS: String(WORKERS),
      MACP_HTTP_BIND_ADDR: "127.0.0.1:0",
      MACP_LOG_LEVEL: "info",
      ...overrides,
    }),
  );
}

/** One gRPC client per connection; node:cluster hands each connection to a worker in turn. */
function grpcClients(url: string, count: number, managers: Http2SessionManager[]) {
  return Array.from({ length: count }, () => {
    const sessionManager = new Http2SessionManager(url);
    managers.push(sessionManager);
    return createClient(MACPRuntimeService, createGrpcTransport({ baseUrl: url, sessionManager }));
  });
}

let db: ThrowawayPostgres;
beforeAll(async () => {
  buildRuntime();
  db = await startThrowawayPostgres();
}, 120_000);
afterAll(() => db?.stop());

describe("MACP_WORKERS with MACP_STORAGE_BACKEND=postgres", () => {
  it("serves both listeners from every worker, as one runtime", async () => {
    const child = await startPool("workers");
    const managers: Http2SessionManager[] = [];
    try {
      const lines = await waitForListeners(child, WORKERS);
      // Every worker listens on the same two ports (node:cluster shares them).
      expect(new Set(lines.map((line) => line.pid)).size).toBe(WORKERS);
      expect(new Set(lines.map((line) => line.url)).size).toBe(1);
      expect(new Set(lines.map((line) => line.httpUrl)).size).toBe(1);
      const { url, httpUrl } = lines[0] as Listening;

      // One connection per client: the cluster spreads connections over the workers.
      const grpc = grpcClients(url, 4, managers);
      const connect = Array.from({ length: 4 }, () =>
        createClient(
          MACPRuntimeService,
          createConnectTransport({ baseUrl: httpUrl, httpVersion: "1.1" }),
        ),
      );

      const sessionId = newSessionId();
      const start = envelope({
        mode: DECISION,
        sessionId,
        sender: "agent://a",
        messageType: "SessionStart",
        payload: sessionStartPayload({ intent: "workers", participants: ["agent://a"] }),
      });
      const started = await (grpc[0] as (typeof grpc)[number]).send(
        { envelope: start },
        as("agent://a"),
      );
      expect(started.ack?.ok).toBe(true);

      // A retry through the other listener is a duplicate, whichever worker answers it.
      for (const client of connect) {
        const retried = await client.send({ envelope: start }, as("agent://a"));
        expect(retried.ack?.duplicate).toBe(true);
      }
      const proposal = envelope({
        mode: DECISION,
        sessionId,
        sender: "agent://a",
        messageType: "Proposal",
        payload: encode(decision.ProposalPayloadSchema, { proposalId: "p1", option: "ship" }),
      });
      const accepted = await (connect[1] as (typeof connect)[number]).send(
        { envelope: proposal },
        as("agent://a"),
      );
      expect(accepted.ack?.ok).toBe(true);
      for (const client of [...grpc, ...connect]) {
        const { metadata } = await client.getSession({ sessionId }, as("agent://a"));
        expect(metadata?.state).toBe(SessionState.OPEN);
      }

      child.child.kill("SIGTERM");
      expect(await child.exited).toBe(0);
    } finally {
      for (const manager of managers) manager.abort();
      child.child.kill("SIGKILL");
    }
  }, 60_000);

  it("serves MACP_METRICS_ADDR from the primary, summing every worker's metrics", async () => {
    const child = await startPool("workers-metrics", { MACP_METRICS_ADDR: "127.0.0.1:0" });
    const managers: Http2SessionManager[] = [];
    try {
      const lines = await waitForListeners(child, WORKERS);
      // Workers leave the address to the primary.
      expect(lines.map((line) => (line as Listening & { metrics: unknown }).metrics)).toEqual(
        lines.map(() => null),
      );
      await child.waitForOutput("serving metrics for every worker");
      const primaryLine = child
        .stdout()
        .split("\n")
        .find((line) => line.includes("serving metrics for every worker"));
      const { metrics } = JSON.parse(primaryLine ?? "{}") as { metrics: string };
      const scrape = async (): Promise<string> => {
        const response = await fetch(`http://${metrics}/metrics`);
        expect(response.status).toBe(200);
        return response.text();
      };

      // Four connections, two per worker: Sends reach both.
      const clients = grpcClients((lines[0] as Listening).url, 2 * WORKERS, managers);
      const sends = 3;
      for (const client of clients) {
        for (let i = 0; i < sends; i++) {
          const start = envelope({
            mode: DECISION,
            sessionId: newSessionId(),
            sender: "agent://a",
            messageType: "SessionStart",
            payload: sessionStartPayload({ intent: "metrics", participants: ["agent://a"] }),
          });
          expect((await client.send({ envelope: start }, as("agent://a"))).ack?.ok).toBe(true);
        }
      }
      const total = clients.length * sends;
      const text = await scrape();
      expect(text).toContain(`macp_workers ${WORKERS}`);
      expect(text).toContain(`macp_sends_total{outcome="accepted",code=""} ${total}`);
      expect(text).toContain(`macp_sessions_started_total{mode="${DECISION}"} ${total}`);
      // One HELP/TYPE per metric: merged, not concatenated.
      expect(text.match(/^# TYPE macp_sends_total /gm)).toHaveLength(1);
      expect(text.match(/^process_cpu_seconds_total /gm)).toHaveLength(1);

      // A worker that has exited is left out; the scrape still answers.
      const victim = (lines[0] as Listening).pid;
      const uptime = 5_000; // the pool replaces a worker that ran this long
      await new Promise((resolve) => setTimeout(resolve, uptime));
      process.kill(victim, "SIGKILL");
      for (
        let attempt = 0;
        attempt < 100 && !child.stderr().includes(`${victim} exited`);
        attempt++
      ) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(child.stderr()).toContain(`worker ${victim} exited`);
      const afterExit = await scrape();
      expect(afterExit).toMatch(/^macp_workers [12]$/m);
      expect(afterExit).toContain("macp_sends_total");

      child.child.kill("SIGTERM");
      expect(await child.exited).toBe(0);
    } finally {
      for (const manager of managers) manager.abort();
      child.child.kill("SIGKILL");
    }
  }, 60_000);
});
