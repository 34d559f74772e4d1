import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import * as http2 from "node:http2";
import { connect as connectTcp } from "node:net";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
  Http2SessionManager,
} from "@connectrpc/connect-node";
import { MACPRuntimeService, PolicyDescriptorSchema } from "@macp/proto";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  envelope,
  newSessionId,
  SessionState,
  sessionStartPayload,
} from "../src/examples/support.js";
import { type RunningRuntime, StartupError } from "../src/start-runtime.js";
import { LISTENERS, startTestRuntime, tempDir } from "./helpers.js";

const DECISION = "macp.mode.decision.v1";

function clientFor(url: string, transportOptions: { ca?: Buffer } = {}) {
  const sessionManager = new Http2SessionManager(
    url,
    undefined,
    transportOptions.ca === undefined ? undefined : { ca: transportOptions.ca },
  );
  const client = createClient(
    MACPRuntimeService,
    createGrpcTransport({ baseUrl: url, sessionManager }),
  );
  return { client, close: () => sessionManager.abort() };
}

const as = (agent: string) => ({ headers: { authorization: `Bearer ${agent}` } });

function start(sessionId: string, sender: string, participants = ["agent://a", "agent://b"]) {
  return envelope({
    mode: DECISION,
    sessionId,
    sender,
    messageType: "SessionStart",
    payload: sessionStartPayload({ intent: "test", participants }),
  });
}

/** Reads a raw HTTP response from host:port, the way the reference's metrics test does. */
function rawGet(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connectTcp(port, host, () => {
      socket.write(`GET /metrics HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
    });
    let text = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      text += chunk;
    });
    socket.on("end", () => resolve(text));
    socket.on("error", reject);
  });
}

describe.each(LISTENERS)("over %s", (_listener, urlOf) => {
  describe("servers with their own settings", () => {
    const running: RunningRuntime[] = [];
    const clients: { close(): void }[] = [];
    const serve = async (env: Record<string, string>) => {
      const server = await startTestRuntime(env);
      running.push(server);
      const connection = clientFor(urlOf(server));
      clients.push(connection);
      return { server, client: connection.client };
    };
    afterEach(async () => {
      for (const client of clients.splice(0)) client.close();
      await Promise.all(running.splice(0).map((server) => server.close({ drainMs: 0 })));
    });

    it("refuses a third SessionStart per minute with RATE_LIMITED, per sender", async () => {
      const { client } = await serve({ MACP_SESSION_START_LIMIT_PER_MINUTE: "2" });
      const send = async (sender: string) =>
        (await client.send({ envelope: start(newSessionId(), sender) }, as(sender))).ack;
      expect((await send("agent://a"))?.ok).toBe(true);
      expect((await send("agent://a"))?.ok).toBe(true);
      const third = await send("agent://a");
      expect(third?.ok).toBe(false);
      expect(third?.error?.code).toBe("RATE_LIMITED");
      expect((await send("agent://b"))?.ok).toBe(true);
    });

    it("refuses messages beyond MACP_MESSAGE_LIMIT_PER_MINUTE with RATE_LIMITED", async () => {
      const { client } = await serve({ MACP_MESSAGE_LIMIT_PER_MINUTE: "3" });
      const sessionId = newSessionId();
      expect(
        (await client.send({ envelope: start(sessionId, "agent://a") }, as("agent://a"))).ack?.ok,
      ).toBe(true);
      const codes: string[] = [];
      for (let i = 0; i < 4; i++) {
        const ack = (
          await client.send(
            {
              envelope: envelope({
                mode: DECISION,
                sessionId,
                sender: "agent://a",
                messageType: "Objection",
              }),
            },
            as("agent://a"),
          )
        ).ack;
        codes.push(ack?.error?.code ?? "OK");
      }
      // The first three use the budget (even though the mode refuses them); the fourth is over it.
      expect(codes.slice(3)).toEqual(["RATE_LIMITED"]);
      expect(codes.slice(0, 3)).not.toContain("RATE_LIMITED");
    });

    it("answers an oversized payload with PAYLOAD_TOO_LARGE and refuses an oversized frame", async () => {
      const { client } = await serve({ MACP_MAX_PAYLOAD_BYTES: "1024" });
      const sessionId = newSessionId();
      expect(
        (await client.send({ envelope: start(sessionId, "agent://a") }, as("agent://a"))).ack?.ok,
      ).toBe(true);
      const big = envelope({
        mode: DECISION,
        sessionId,
        sender: "agent://a",
        messageType: "Proposal",
        payload: new Uint8Array(4096),
      });
      const ack = (await client.send({ envelope: big }, as("agent://a"))).ack;
      expect(ack?.ok).toBe(false);
      expect(ack?.error?.code).toBe("PAYLOAD_TOO_LARGE");

      const huge = { ...big, payload: new Uint8Array(1024 + 70_000) };
      const refused = await client.send({ envelope: huge }, as("agent://a")).then(
        () => undefined,
        (error: unknown) => ConnectError.from(error),
      );
      expect(refused?.code).toBe(Code.ResourceExhausted);
    });

    it("serves Prometheus text on MACP_METRICS_ADDR for any path", async () => {
      const { server, client } = await serve({ MACP_METRICS_ADDR: "127.0.0.1:0" });
      const address = server.metricsAddress;
      expect(address).toBeDefined();
      const sessionId = newSessionId();
      await client.send({ envelope: start(sessionId, "agent://a") }, as("agent://a"));
      await client.send({ envelope: start("not-a-session-id", "agent://a") }, as("agent://a"));

      const response = await rawGet(address?.host ?? "", address?.port ?? 0);
      expect(response.startsWith("HTTP/1.1 200 OK")).toBe(true);
      expect(response).toContain("text/plain");
      expect(response).toContain('macp_sends_total{outcome="accepted",code=""} 1');
      expect(response).toContain(
        'macp_sends_total{outcome="rejected",code="INVALID_SESSION_ID"} 1',
      );
      expect(response).toContain(`macp_sessions_started_total{mode="${DECISION}"} 1`);
      expect(response).toContain('macp_sessions{state="open"} 1');
      expect(response).toContain("process_cpu_user_seconds_total");

      const text = await (await fetch(`http://${address?.host}:${address?.port}/anything`)).text();
      expect(text).toContain("macp_streams_open");
    });

    it("counts open streams", async () => {
      const { server, client } = await serve({ MACP_METRICS_ADDR: "127.0.0.1:0" });
      const abort = new AbortController();
      const events = client.watchSessions({}, { ...as("agent://watcher"), signal: abort.signal });
      const iterator = events[Symbol.asyncIterator]();
      const sessionId = newSessionId();
      await client.send({ envelope: start(sessionId, "agent://a") }, as("agent://a"));
      await iterator.next();
      const url = `http://${server.metricsAddress?.host}:${server.metricsAddress?.port}/`;
      expect(await (await fetch(url)).text()).toContain('macp_streams_open{rpc="WatchSessions"} 1');
      abort.abort();
      await iterator.return?.();
      await expect
        .poll(async () => (await fetch(url)).text())
        .toContain('macp_streams_open{rpc="WatchSessions"} 0');
    });

    it("keeps running without metrics when MACP_METRICS_ADDR cannot be bound", async () => {
      const first = await serve({ MACP_METRICS_ADDR: "127.0.0.1:0" });
      const taken = first.server.metricsAddress;
      const second = await serve({ MACP_METRICS_ADDR: `127.0.0.1:${taken?.port}` });
      expect(second.server.metricsAddress).toBeUndefined();
      const init = await second.client.initialize({ supportedProtocolVersions: ["1.0"] });
      expect(init.selectedProtocolVersion).toBe("1.0");
    });

    it("advertises MACP_MAX_CONCURRENT_STREAMS in its HTTP/2 settings", async () => {
      const server = await startTestRuntime({ MACP_MAX_CONCURRENT_STREAMS: "3" });
      running.push(server);
      const session = http2.connect(urlOf(server));
      try {
        const settings = await new Promise<http2.Settings>((resolve, reject) => {
          session.once("remoteSettings", resolve);
          session.once("error", reject);
        });
        expect(settings.maxConcurrentStreams).toBe(3);
      } finally {
        session.destroy();
      }
    });

    it("authenticates static tokens and refuses unknown ones", async () => {
      const { client } = await serve({
        MACP_AUTH_TOKENS_JSON: JSON.stringify({
          tokens: [{ token: "alice-token", sender: "agent://alice" }],
        }),
      });
      const ok = await client.send({ envelope: start(newSessionId(), "") }, as("alice-token"));
      expect(ok.ack?.ok).toBe(true);
      const refused = await client.send(
        { envelope: start(newSessionId(), "") },
        as("agent://alice"),
      );
      expect(refused.ack?.error?.code).toBe("UNAUTHENTICATED");
    });

    describe("MACP_POLICIES_DIR", () => {
      let dir: { path: string; remove(): Promise<void> };
      beforeAll(async () => {
        dir = await tempDir("policies");
        writeFileSync(
          join(dir.path, "strict.json"),
          JSON.stringify({
            policy_id: "policy.test.filepolicy",
            mode: DECISION,
            description: "initiator only",
            rules: { commitment: { authority: "initiator_only" } },
            schema_version: 1,
          }),
        );
        // Neither a subdirectory nor a non-JSON file is read.
        mkdirSync(join(dir.path, "nested.json"));
        writeFileSync(join(dir.path, "README.txt"), "not a policy");
      });
      afterAll(async () => {
        await dir.remove();
      });

      it("preloads the policies and makes the registry read-only", async () => {
        const { client } = await serve({ MACP_POLICIES_DIR: dir.path });
        const listed = await client.listPolicies({}, as("agent://a"));
        expect(listed.descriptors.map((d) => d.policyId)).toContain("policy.test.filepolicy");
        const refused = await client
          .registerPolicy(
            {
              policyDescriptor: create(PolicyDescriptorSchema, {
                policyId: "policy.test.other",
                mode: DECISION,
                rules: "{}",
                schemaVersion: 1,
              }),
            },
            as("agent://a"),
          )
          .then(
            () => undefined,
            (error: unknown) => ConnectError.from(error),
          );
        expect(refused?.code).toBe(Code.FailedPrecondition);
        const init = await client.initialize({ supportedProtocolVersions: ["1.0"] });
        expect(init.capabilities?.policyRegistry?.registerPolicy).toBe(false);

        const sessionId = newSessionId();
        const bound = envelope({
          mode: DECISION,
          sessionId,
          sender: "agent://a",
          messageType: "SessionStart",
          payload: sessionStartPayload({
            intent: "governed",
            participants: ["agent://a"],
            policyVersion: "policy.test.filepolicy",
          }),
        });
        expect((await client.send({ envelope: bound }, as("agent://a"))).ack?.ok).toBe(true);
      });
    });

    const hasOpenssl = (() => {
      try {
        execFileSync("openssl", ["version"], { stdio: "ignore" });
        return true;
      } catch {
        return false;
      }
    })();

    it.skipIf(!hasOpenssl)("serves TLS when both MACP_TLS_* files are set", async () => {
      const dir = await tempDir("tls");
      try {
        const cert = join(dir.path, "server.crt");
        const key = join(dir.path, "server.key");
        execFileSync(
          "openssl",
          [
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            key,
            "-out",
            cert,
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
          ],
          { stdio: "ignore" },
        );
        const server = await startTestRuntime({ MACP_TLS_CERT_PATH: cert, MACP_TLS_KEY_PATH: key });
        running.push(server);
        expect(urlOf(server).startsWith("https://")).toBe(true);
        const { readFileSync } = await import("node:fs");
        const connection = clientFor(urlOf(server), { ca: readFileSync(cert) });
        clients.push(connection);
        const ack = (
          await connection.client.send(
            { envelope: start(newSessionId(), "agent://a") },
            as("agent://a"),
          )
        ).ack;
        expect(ack?.sessionState).toBe(SessionState.OPEN);

        // A plaintext client cannot talk to the TLS port.
        const plain = clientFor(urlOf(server).replace("https://", "http://"));
        clients.push(plain);
        await expect(
          plain.client.initialize({ supportedProtocolVersions: ["1.0"] }, { timeoutMs: 2000 }),
        ).rejects.toThrow();
      } finally {
        await dir.remove();
      }
    });
  });
});

describe("MACP_HTTP_BIND_ADDR", () => {
  it("serves gRPC-Web and the Connect protocol by default", async () => {
    const server = await startTestRuntime();
    try {
      const baseUrl = server.httpUrl ?? "";
      for (const transport of [
        createGrpcWebTransport({ baseUrl, httpVersion: "2" }),
        createConnectTransport({ baseUrl, httpVersion: "2" }),
      ]) {
        const client = createClient(MACPRuntimeService, transport);
        const init = await client.initialize({ supportedProtocolVersions: ["1.0"] });
        expect(init.selectedProtocolVersion).toBe("1.0");
      }
    } finally {
      await server.close({ drainMs: 0 });
    }
  });

  it("serves gRPC only when off", async () => {
    const server = await startTestRuntime({ MACP_HTTP_BIND_ADDR: "off" });
    try {
      expect(server.httpUrl).toBeUndefined();
      const connection = clientFor(server.url);
      const init = await connection.client.initialize({ supportedProtocolVersions: ["1.0"] });
      expect(init.selectedProtocolVersion).toBe("1.0");
      connection.close();
    } finally {
      await server.close({ drainMs: 0 });
    }
  });

  it("refuses start-up naming MACP_HTTP_BIND_ADDR when its port is taken", async () => {
    const first = await startTestRuntime();
    try {
      const taken = first.httpAddress?.port;
      const refused = await startTestRuntime({ MACP_HTTP_BIND_ADDR: `127.0.0.1:${taken}` }).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(refused).toBeInstanceOf(StartupError);
      expect((refused as StartupError).variable).toBe("MACP_HTTP_BIND_ADDR");
    } finally {
      await first.close({ drainMs: 0 });
    }
  });
});
