// The authentication and capability matrix against a real server: JWTs signed
// with keys made here and served from a local JWKS endpoint, static tokens with
// every capability flag, and the refusals each must produce on the wire.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { startEnvelope } from "@macp/core/testing";
import { type Ack, MACPRuntimeService } from "@macp/proto";
import { exportJWK, generateKeyPair, type JWTPayload, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { envelope, newSessionId } from "../src/examples/support.js";
import type { RunningRuntime } from "../src/start-runtime.js";
import { LISTENERS, startTestRuntime } from "./helpers.js";

const ISSUER = "https://issuer.macp.test";
const DECISION = "macp.mode.decision.v1";
const KID = "test-key-1";

describe.each(LISTENERS)("auth matrix over %s", (_listener, urlOf) => {
  let jwks: Server;
  let running: RunningRuntime;
  let sessions: Http2SessionManager;
  let client: ReturnType<typeof createClient<typeof MACPRuntimeService>>;
  let privateKey: Awaited<ReturnType<typeof generateKeyPair>>["privateKey"];

  const staticTokens = [
    {
      token: "observer-token",
      sender: "agent://auditor",
      is_observer: true,
      can_start_sessions: false,
    },
    { token: "task-only-token", sender: "agent://tasker", allowed_modes: ["macp.mode.task.v1"] },
    { token: "no-start-token", sender: "agent://listener", can_start_sessions: false },
    { token: "capped-token", sender: "agent://capped", max_open_sessions: 1 },
    { token: "admin-token", sender: "agent://admin", can_manage_mode_registry: true },
    { token: "alice-token", sender: "agent://alice" },
  ];

  async function jwt(
    claims: JWTPayload & { sub?: string },
    overrides: { iss?: string; aud?: string; exp?: number } = {},
  ) {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT(claims)
      .setProtectedHeader({ alg: "RS256", kid: KID })
      .setIssuer(overrides.iss ?? ISSUER)
      .setAudience(overrides.aud ?? "macp-runtime")
      .setIssuedAt(now)
      .setExpirationTime(overrides.exp ?? now + 600)
      .sign(privateKey);
  }

  const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });

  const start = (sessionId: string, sender: string, participants: string[], mode = DECISION) =>
    startEnvelope(sessionId, sender, { participants, mode });

  async function send(
    token: string,
    env: ReturnType<typeof start>,
    header = "authorization",
  ): Promise<Ack> {
    const value = header === "authorization" ? `Bearer ${token}` : token;
    const { ack } = await client.send({ envelope: env }, { headers: { [header]: value } });
    if (!ack) throw new Error("no ack");
    return ack;
  }

  async function statusOf(call: Promise<unknown>): Promise<Code | undefined> {
    return call.then(
      () => undefined,
      (error: unknown) => ConnectError.from(error).code,
    );
  }

  beforeAll(async () => {
    const pair = await generateKeyPair("RS256", { extractable: true });
    privateKey = pair.privateKey;
    const publicJwk = { ...(await exportJWK(pair.publicKey)), kid: KID, alg: "RS256", use: "sig" };
    jwks = createServer((_, response) => {
      response.setHeader("content-type", "application/json");
      response.end(JSON.stringify({ keys: [publicJwk] }));
    });
    await new Promise<void>((resolve) => jwks.listen(0, "127.0.0.1", resolve));
    running = await startTestRuntime({
      MACP_AUTH_ISSUER: ISSUER,
      MACP_AUTH_JWKS_URL: `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks`,
      MACP_AUTH_TOKENS_JSON: JSON.stringify({ tokens: staticTokens }),
    });
    sessions = new Http2SessionManager(urlOf(running));
    client = createClient(
      MACPRuntimeService,
      createGrpcTransport({ baseUrl: urlOf(running), sessionManager: sessions }),
    );
  });

  afterAll(async () => {
    sessions?.abort();
    await running?.close({ drainMs: 1000 });
    await new Promise<void>((resolve) => (jwks ? jwks.close(() => resolve()) : resolve()));
  });

  describe("JWT authentication over the wire", () => {
    it("accepts a valid token and takes the sender from `sub`", async () => {
      const token = await jwt({ sub: "agent://jwt-alice" });
      const sessionId = newSessionId();
      const ack = await send(token, start(sessionId, "", ["agent://bob"]));
      expect(ack.ok, ack.error?.message).toBe(true);
      const { metadata } = await client.getSession({ sessionId }, bearer(token));
      expect(metadata?.initiator).toBe("agent://jwt-alice");
    });

    it.each([
      [
        "an expired token",
        () => jwt({ sub: "agent://a" }, { exp: Math.floor(Date.now() / 1000) - 3600 }),
      ],
      ["a wrong audience", () => jwt({ sub: "agent://a" }, { aud: "someone-else" })],
      ["a wrong issuer", () => jwt({ sub: "agent://a" }, { iss: "https://evil.test" })],
      [
        "an unsigned token (alg none)",
        async () => {
          const part = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
          const now = Math.floor(Date.now() / 1000);
          return `${part({ alg: "none" })}.${part({ sub: "agent://a", iss: ISSUER, aud: "macp-runtime", exp: now + 600 })}.`;
        },
      ],
      [
        "HS256 when it is not allowed",
        () =>
          new SignJWT({ sub: "agent://a" })
            .setProtectedHeader({ alg: "HS256" })
            .setIssuer(ISSUER)
            .setAudience("macp-runtime")
            .setExpirationTime("10m")
            .sign(new TextEncoder().encode("a-shared-secret-of-enough-length-0123456789")),
      ],
    ])("refuses %s with UNAUTHENTICATED", async (_, makeToken) => {
      const ack = await send(await makeToken(), start(newSessionId(), "", ["agent://b"]));
      expect(ack.ok).toBe(false);
      expect(ack.error?.code).toBe("UNAUTHENTICATED");
    });

    it("does not read JWTs from x-macp-token", async () => {
      const token = await jwt({ sub: "agent://a" });
      const ack = await send(token, start(newSessionId(), "", ["agent://b"]), "x-macp-token");
      expect(ack.error?.code).toBe("UNAUTHENTICATED");
    });

    it("applies macp_scopes: an empty allowed_modes list allows no mode", async () => {
      const token = await jwt({ sub: "agent://scoped", macp_scopes: { allowed_modes: [] } });
      const ack = await send(token, start(newSessionId(), "", ["agent://b"]));
      expect(ack.error?.code).toBe("FORBIDDEN");
    });
  });

  describe("static tokens and capabilities over the wire", () => {
    it("refuses a missing credential on Send as a NACK and on GetSession as a status", async () => {
      const { ack } = await client.send({ envelope: start(newSessionId(), "", ["agent://b"]) });
      expect(ack?.error?.code).toBe("UNAUTHENTICATED");
      expect(await statusOf(client.getSession({ sessionId: newSessionId() }))).toBe(
        Code.Unauthenticated,
      );
    });

    it("refuses an unknown opaque token and a spoofed sender", async () => {
      expect(
        (await send("nobody-token", start(newSessionId(), "", ["agent://b"]))).error?.code,
      ).toBe("UNAUTHENTICATED");
      const spoofed = await send(
        "alice-token",
        start(newSessionId(), "agent://mallory", ["agent://b"]),
      );
      expect(spoofed.error?.code).toBe("UNAUTHENTICATED");
    });

    it("lets an observer read any session but not send into it", async () => {
      const sessionId = newSessionId();
      expect((await send("alice-token", start(sessionId, "", ["agent://bob"]))).ok).toBe(true);
      const { metadata } = await client.getSession({ sessionId }, bearer("observer-token"));
      expect(metadata?.initiator).toBe("agent://alice");
      const vote = envelope({
        mode: DECISION,
        sessionId,
        sender: "",
        messageType: "Vote",
        payload: new Uint8Array(),
      });
      expect((await send("observer-token", vote)).error?.code).toBe("FORBIDDEN");
      expect(await statusOf(client.getSession({ sessionId }, bearer("no-start-token")))).toBe(
        Code.PermissionDenied,
      );
    });

    it("enforces allowed_modes and can_start_sessions with FORBIDDEN", async () => {
      expect(
        (await send("task-only-token", start(newSessionId(), "", ["agent://b"]))).error?.code,
      ).toBe("FORBIDDEN");
      expect(
        (await send("no-start-token", start(newSessionId(), "", ["agent://b"]))).error?.code,
      ).toBe("FORBIDDEN");
    });

    it("lets an identity with allowed_modes send ambient Signals, which name no mode", async () => {
      const signal = envelope({ mode: "", sessionId: "", sender: "", messageType: "Signal" });
      const ack = await send("task-only-token", signal);
      expect(ack.ok, ack.error?.message).toBe(true);
    });

    it("enforces max_open_sessions with RATE_LIMITED", async () => {
      expect((await send("capped-token", start(newSessionId(), "", ["agent://b"]))).ok).toBe(true);
      expect(
        (await send("capped-token", start(newSessionId(), "", ["agent://b"]))).error?.code,
      ).toBe("RATE_LIMITED");
    });

    it("requires can_manage_mode_registry to change the registries", async () => {
      const descriptor = {
        mode: "ext.matrix.v1",
        modeVersion: "1.0.0",
        messageTypes: ["SessionStart", "Note", "Commitment"],
        terminalMessageTypes: ["Commitment"],
      };
      expect(
        await statusOf(
          client.registerExtMode({ modeDescriptor: descriptor }, bearer("alice-token")),
        ),
      ).toBe(Code.PermissionDenied);
      const registered = await client.registerExtMode(
        { modeDescriptor: descriptor },
        bearer("admin-token"),
      );
      expect(registered.ok, registered.error).toBe(true);
    });
  });
});
