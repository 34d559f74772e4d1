// The built executable, run as an operator would: refusals, graceful
// shutdown, persistence across restarts, and the example dispatcher.

import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { decision, MACPRuntimeService } from "@macp/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  encode,
  envelope,
  newSessionId,
  SessionState,
  sessionStartPayload,
} from "../src/examples/support.js";
import type { RunningRuntime } from "../src/start-runtime.js";
import {
  buildRuntime,
  devEnv,
  listeningUrl,
  MAIN_JS,
  RUN_JS,
  type Spawned,
  spawnNode,
  startTestRuntime,
  tempDir,
} from "./helpers.js";

const DECISION = "macp.mode.decision.v1";
const as = (agent: string) => ({ headers: { authorization: `Bearer ${agent}` } });

beforeAll(buildRuntime, 120_000);

function withClient<T>(
  url: string,
  body: (client: ReturnType<typeof createClient<typeof MACPRuntimeService>>) => Promise<T>,
) {
  const sessionManager = new Http2SessionManager(url);
  const client = createClient(
    MACPRuntimeService,
    createGrpcTransport({ baseUrl: url, sessionManager }),
  );
  return body(client).finally(() => sessionManager.abort());
}

async function refusal(
  env: Record<string, string>,
): Promise<{ code: number | string; stderr: string }> {
  const child = spawnNode(MAIN_JS, [], env);
  const code = await child.exited;
  return { code, stderr: child.stderr() };
}

describe("start-up refusals of the executable", () => {
  it("refuses without authentication or MACP_ALLOW_INSECURE", async () => {
    const { code, stderr } = await refusal({
      MACP_MEMORY_ONLY: "1",
      MACP_BIND_ADDR: "127.0.0.1:0",
    });
    expect(code).toBe(1);
    expect(stderr).toContain("no authentication configured");
    expect(stderr).toContain("MACP_ALLOW_INSECURE");
  });

  it("refuses plaintext with real authentication unless MACP_ALLOW_INSECURE=1", async () => {
    const { code, stderr } = await refusal({
      MACP_MEMORY_ONLY: "1",
      MACP_AUTH_TOKENS_JSON: '[{"token":"t","sender":"a"}]',
    });
    expect(code).toBe(1);
    expect(stderr.trim()).toMatch(
      /^macp-runtime: MACP_TLS_CERT_PATH: TLS is required unless MACP_ALLOW_INSECURE=1 is set/,
    );
    expect(stderr.trim().split("\n")).toHaveLength(1);
  });

  const oneLine: [string, Record<string, string>, string][] = [
    ["MACP_BIND_ADDR", { MACP_BIND_ADDR: "localhost:50051" }, "not a literal IP:port"],
    ["MACP_MAX_PAYLOAD_BYTES", { MACP_MAX_PAYLOAD_BYTES: "0" }, "positive integer"],
    [
      "MACP_SESSION_START_LIMIT_PER_MINUTE",
      { MACP_SESSION_START_LIMIT_PER_MINUTE: "x" },
      "positive integer",
    ],
    ["MACP_MESSAGE_LIMIT_PER_MINUTE", { MACP_MESSAGE_LIMIT_PER_MINUTE: "-1" }, "positive integer"],
    ["MACP_CHECKPOINT_INTERVAL", { MACP_CHECKPOINT_INTERVAL: "often" }, "non-negative integer"],
    [
      "MACP_STORAGE_BACKEND",
      { MACP_MEMORY_ONLY: "0", MACP_STORAGE_BACKEND: "rocksdb" },
      "not available",
    ],
    [
      "MACP_TLS_CERT_PATH",
      { MACP_TLS_CERT_PATH: "/nonexistent/cert.pem", MACP_TLS_KEY_PATH: MAIN_JS },
      "file not found",
    ],
    ["MACP_AUTH_TOKENS_JSON", { MACP_AUTH_TOKENS_JSON: "{" }, "MACP_AUTH_TOKENS_JSON"],
    ["MACP_POLICIES_DIR", { MACP_POLICIES_DIR: "/nonexistent/policies" }, "cannot read directory"],
  ];
  for (const [variable, env, detail] of oneLine) {
    it(`exits 1 naming ${variable}`, async () => {
      const { code, stderr } = await refusal(devEnv({ MACP_LOG_LEVEL: "silent", ...env }));
      expect(code).toBe(1);
      const lines = stderr.trim().split("\n");
      expect(lines, stderr).toHaveLength(1);
      expect(lines[0]?.startsWith(`macp-runtime: ${variable}: `), stderr).toBe(true);
      expect(lines[0]).toContain(detail);
    });
  }

  it("exits 1 naming MACP_POLICIES_DIR for an invalid policy file", async () => {
    const dir = await tempDir("bad-policy");
    try {
      writeFileSync(join(dir.path, "a.json"), JSON.stringify({ policy_id: "policy.x", mode: "*" }));
      const { code, stderr } = await refusal(devEnv({ MACP_POLICIES_DIR: dir.path }));
      expect(code).toBe(1);
      expect(stderr).toMatch(/^macp-runtime: MACP_POLICIES_DIR: .*a\.json/);
    } finally {
      await dir.remove();
    }
  });

  it("exits 1 naming MACP_DATA_DIR when the data directory is unusable", async () => {
    const dir = await tempDir("bad-data");
    try {
      const file = join(dir.path, "not-a-directory");
      writeFileSync(file, "x");
      const { code, stderr } = await refusal(
        devEnv({ MACP_MEMORY_ONLY: "0", MACP_DATA_DIR: file }),
      );
      expect(code).toBe(1);
      expect(stderr).toMatch(/^macp-runtime: MACP_DATA_DIR: /);
    } finally {
      await dir.remove();
    }
  });

  it("exits 1 naming MACP_BIND_ADDR when the port is taken", async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const { port } = blocker.address() as { port: number };
    try {
      const { code, stderr } = await refusal(devEnv({ MACP_BIND_ADDR: `127.0.0.1:${port}` }));
      expect(code).toBe(1);
      expect(stderr).toMatch(
        /^macp-runtime: MACP_BIND_ADDR: cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE/,
      );
    } finally {
      blocker.close();
    }
  });
});

describe("the running executable", () => {
  const children: Spawned[] = [];
  afterAll(() => {
    for (const child of children) child.child.kill("SIGKILL");
  });
  // The listening line is how a test learns the port, so these servers log at info.
  const launch = async (env: Record<string, string>) => {
    const child = spawnNode(MAIN_JS, [], { ...env, MACP_LOG_LEVEL: "info" });
    children.push(child);
    await child.waitForOutput("listening");
    return { child, url: listeningUrl(child.stdout()) };
  };

  it("logs JSON on stdout and shuts down on SIGTERM with exit 0 within 5 s, ending open streams", async () => {
    const { child, url } = await launch(devEnv({ MACP_SHUTDOWN_DRAIN_SECS: "2" }));
    for (const line of child.stdout().trim().split("\n"))
      expect(() => JSON.parse(line)).not.toThrow();

    await withClient(url, async (client) => {
      const sessionId = newSessionId();
      await client.send(
        {
          envelope: envelope({
            mode: DECISION,
            sessionId,
            sender: "agent://a",
            messageType: "SessionStart",
            payload: sessionStartPayload({ intent: "shutdown", participants: ["agent://a"] }),
          }),
        },
        as("agent://a"),
      );
      const stream = client.watchSessions({}, as("agent://watcher"))[Symbol.asyncIterator]();
      expect((await stream.next()).done).toBe(false); // the initial CREATED: the stream is open

      const signalled = Date.now();
      child.child.kill("SIGTERM");
      const ended = stream.next().then(
        (step) => (step.done ? "ended" : "event"),
        (error: unknown) => Code[ConnectError.from(error).code],
      );
      expect(await child.exited).toBe(0);
      expect(Date.now() - signalled).toBeLessThan(5000);
      expect(["Unavailable", "ended"]).toContain(await ended);
    });
    expect(child.stdout()).toContain("state persisted, goodbye");
  });

  it("refuses a second runtime on the same MACP_DATA_DIR, naming the holder's pid, until the holder is killed", async () => {
    const dir = await tempDir("locked");
    try {
      const env = devEnv({ MACP_MEMORY_ONLY: undefined, MACP_DATA_DIR: dir.path });
      const first = await launch(env);
      const second = spawnNode(MAIN_JS, [], env);
      expect(await second.exited).toBe(1);
      expect(second.stderr()).toMatch(/^macp-runtime: MACP_DATA_DIR: data directory /);
      expect(second.stderr()).toContain(`${dir.path} is in use by another runtime`);
      expect(second.stderr()).toContain(`pid ${first.child.child.pid}`);
      // The first one is unaffected.
      await withClient(first.url, async (client) => {
        const { modes } = await client.listModes({}, as("agent://a"));
        expect(modes.length).toBeGreaterThan(0);
      });

      // A SIGKILLed holder leaves its lock file behind; it must not block a restart.
      first.child.child.kill("SIGKILL");
      await first.child.exited;
      const restarted = await launch(env);
      await withClient(restarted.url, async (client) => {
        const { modes } = await client.listModes({}, as("agent://a"));
        expect(modes.length).toBeGreaterThan(0);
      });
      restarted.child.child.kill("SIGTERM");
      expect(await restarted.child.exited).toBe(0);
    } finally {
      await dir.remove();
    }
  });

  it("persists sessions by default: a session survives a crash and a restart", async () => {
    const dir = await tempDir("persist");
    try {
      const env = devEnv({ MACP_MEMORY_ONLY: undefined, MACP_DATA_DIR: dir.path });
      const sessionId = newSessionId();
      const proposal = envelope({
        mode: DECISION,
        sessionId,
        sender: "agent://a",
        messageType: "Proposal",
        payload: encode(decision.ProposalPayloadSchema, { proposalId: "p1", option: "keep" }),
      });

      const first = await launch(env);
      await withClient(first.url, async (client) => {
        const started = await client.send(
          {
            envelope: envelope({
              mode: DECISION,
              sessionId,
              sender: "agent://a",
              messageType: "SessionStart",
              payload: sessionStartPayload({
                intent: "persist",
                participants: ["agent://a"],
                ttlMs: 300_000,
              }),
            }),
          },
          as("agent://a"),
        );
        expect(started.ack?.ok).toBe(true);
        expect((await client.send({ envelope: proposal }, as("agent://a"))).ack?.ok).toBe(true);
      });
      // An acknowledged message is durable: even SIGKILL does not lose it.
      first.child.child.kill("SIGKILL");
      await first.child.exited;

      const second = await launch(env);
      await withClient(second.url, async (client) => {
        const { metadata } = await client.getSession({ sessionId }, as("agent://a"));
        expect(metadata?.state).toBe(SessionState.OPEN);
        expect(metadata?.mode).toBe(DECISION);
        const again = await client.send({ envelope: proposal }, as("agent://a"));
        expect(again.ack?.duplicate).toBe(true);
      });
      second.child.child.kill("SIGTERM");
      expect(await second.child.exited).toBe(0);
    } finally {
      await dir.remove();
    }
  });
});

describe("recovery of a damaged log", () => {
  const children: Spawned[] = [];
  afterAll(() => {
    for (const child of children) child.child.kill("SIGKILL");
  });

  it("quarantines a damaged session, or refuses to start under MACP_STRICT_RECOVERY=1", async () => {
    const dir = await tempDir("damaged");
    try {
      const env = devEnv({
        MACP_MEMORY_ONLY: undefined,
        MACP_DATA_DIR: dir.path,
        MACP_LOG_LEVEL: "info",
      });
      const sessionId = newSessionId();
      const first = spawnNode(MAIN_JS, [], env);
      children.push(first);
      await first.waitForOutput("listening");
      await withClient(listeningUrl(first.stdout()), async (client) => {
        await client.send(
          {
            envelope: envelope({
              mode: DECISION,
              sessionId,
              sender: "agent://a",
              messageType: "SessionStart",
              payload: sessionStartPayload({ intent: "damage", participants: ["agent://a"] }),
            }),
          },
          as("agent://a"),
        );
        const proposal = envelope({
          mode: DECISION,
          sessionId,
          sender: "agent://a",
          messageType: "Proposal",
          payload: encode(decision.ProposalPayloadSchema, { proposalId: "p1", option: "x" }),
        });
        expect((await client.send({ envelope: proposal }, as("agent://a"))).ack?.ok).toBe(true);
      });
      first.child.kill("SIGTERM");
      expect(await first.exited).toBe(0);

      // Flip a byte inside the first record (after the 56-byte header of a UUID-named
      // log and the 8-byte frame header): damage in the middle, not a torn tail.
      const logs = join(dir.path, "logs");
      const [name] = readdirSync(logs).filter((file) => file.endsWith(".log"));
      const path = join(logs, name ?? "");
      const bytes = readFileSync(path);
      bytes[56 + 8 + 4] = (bytes[56 + 8 + 4] ?? 0) ^ 0xff;
      writeFileSync(path, bytes);

      const strict = spawnNode(MAIN_JS, [], { ...env, MACP_STRICT_RECOVERY: "1" });
      expect(await strict.exited).toBe(1);
      expect(strict.stderr()).toMatch(/^macp-runtime: MACP_STRICT_RECOVERY: recovery failed: /);

      const lenient = spawnNode(MAIN_JS, [], { ...env, MACP_METRICS_ADDR: "127.0.0.1:0" });
      children.push(lenient);
      await lenient.waitForOutput("listening");
      expect(lenient.stdout()).toContain("session quarantined");
      await withClient(listeningUrl(lenient.stdout()), async (client) => {
        const missing = await client.getSession({ sessionId }, as("agent://a")).then(
          () => undefined,
          (error: unknown) => ConnectError.from(error).code,
        );
        expect(missing).toBe(Code.NotFound);
      });
      const line = lenient
        .stdout()
        .split("\n")
        .find((entry) => entry.includes("listening"));
      const metrics = (JSON.parse(line ?? "{}") as { metrics?: string }).metrics;
      const text = await (await fetch(`http://${metrics}/`)).text();
      expect(text).toContain("macp_quarantined_sessions 1");
      lenient.child.kill("SIGTERM");
      expect(await lenient.exited).toBe(0);
    } finally {
      await dir.remove();
    }
  });
});

describe("the example dispatcher (npm run example)", () => {
  let server: RunningRuntime;
  beforeAll(async () => {
    server = await startTestRuntime();
  });
  afterAll(async () => {
    await server?.close({ drainMs: 0 });
  });

  it("runs every example with `all` and exits 0", async () => {
    const child = spawnNode(RUN_JS, ["all"], { MACP_ENDPOINT: server.url });
    const code = await child.exited;
    expect(code, child.stderr()).toBe(0);
    for (const name of [
      "decision",
      "proposal",
      "task",
      "handoff",
      "quorum",
      "multi-round",
      "fuzz",
    ]) {
      expect(child.stdout()).toContain(`== ${name}: ok`);
    }
  });

  it("exits 2 with usage for an unknown example", async () => {
    const child = spawnNode(RUN_JS, ["nonsense"], { MACP_ENDPOINT: server.url });
    expect(await child.exited).toBe(2);
    expect(child.stderr()).toContain("usage:");
  });

  it("exits 1 when the runtime is not there", async () => {
    const child = spawnNode(RUN_JS, ["decision"], { MACP_ENDPOINT: "http://127.0.0.1:1" });
    expect(await child.exited).toBe(1);
    expect(child.stderr()).toContain("decision: FAILED");
  });
});
