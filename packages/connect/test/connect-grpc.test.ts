// The routes over real HTTP/2 (h2c) with Connect's gRPC client: the behaviour
// the official SDKs observe, call by call.

import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { type Client, Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import {
  type Envelope,
  health,
  MACPRuntimeService,
  SessionLifecycleEvent_EventType,
  SessionState,
  SignalPayloadSchema,
  type StreamSessionRequest,
  StreamSessionRequestSchema,
  type StreamSessionResponse,
  StreamSessionResponseSchema,
} from "@macp/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  bearer,
  commitment,
  devAuthenticate,
  envelope,
  GRPC_SERVERS,
  type GrpcServer,
  newRuntime,
  newSessionId,
  type Pushable,
  proposal,
  pushable,
  Reader,
  rawGrpcCall,
  sessionStart,
  vote,
} from "./support.js";

describe.each(GRPC_SERVERS)("served by %s", (_name, startServer) => {
  let server: GrpcServer;
  let client: Client<typeof MACPRuntimeService>;
  let healthClient: Client<typeof health.Health>;

  beforeAll(async () => {
    server = await startServer({
      runtime: newRuntime(),
      authenticate: devAuthenticate,
      port: 0,
    });
    const transport = createGrpcTransport({ baseUrl: server.url });
    client = createClient(MACPRuntimeService, transport);
    healthClient = createClient(health.Health, transport);
  });

  afterAll(async () => {
    await server?.close({ drainMs: 1000 });
  });

  async function send(env: Envelope, agent: string | undefined = env.sender) {
    const response = await client.send(
      { envelope: env },
      agent === undefined ? {} : { headers: bearer(agent) },
    );
    if (response.ack === undefined) throw new Error("Send answered without an ack");
    return response.ack;
  }

  async function startDecision(initiator = "coordinator", participants = ["alice", "bob"]) {
    const sessionId = newSessionId();
    const ack = await send(sessionStart(sessionId, initiator, participants));
    expect(ack.ok, ack.error?.message).toBe(true);
    return sessionId;
  }

  async function statusOf(call: Promise<unknown>): Promise<ConnectError> {
    try {
      await call;
    } catch (error) {
      return ConnectError.from(error);
    }
    throw new Error("the call succeeded");
  }

  function openStream(agent: string): {
    frames: Pushable<StreamSessionRequest>;
    reader: Reader<StreamSessionResponse>;
    abort: AbortController;
  } {
    const frames = pushable<StreamSessionRequest>();
    const abort = new AbortController();
    const responses = client.streamSession(frames, {
      headers: bearer(agent),
      signal: abort.signal,
    });
    return { frames, reader: new Reader(responses), abort };
  }

  function subscribeFrame(sessionId: string, afterSequence = 0n): StreamSessionRequest {
    return create(StreamSessionRequestSchema, {
      subscribeSessionId: sessionId,
      afterSequence,
    });
  }

  function envelopeFrame(env: Envelope): StreamSessionRequest {
    return create(StreamSessionRequestSchema, { envelope: env });
  }

  function envelopeOf(response: StreamSessionResponse): Envelope {
    if (response.response.case !== "envelope") {
      throw new Error(`expected an envelope, got ${JSON.stringify(response.response.value)}`);
    }
    return response.response.value;
  }

  describe("Initialize", () => {
    it("selects 1.0 without credentials", async () => {
      const response = await client.initialize({
        supportedProtocolVersions: ["1.0"],
        clientInfo: { name: "test" },
      });
      expect(response.selectedProtocolVersion).toBe("1.0");
      expect(response.runtimeInfo?.name).not.toBe("");
      expect(response.supportedModes).toContain("macp.mode.decision.v1");
    });

    it("refuses an empty version list with INVALID_ARGUMENT", async () => {
      const error = await statusOf(client.initialize({ supportedProtocolVersions: [] }));
      expect(error.code).toBe(Code.InvalidArgument);
      expect(error.rawMessage).toMatch(/^INVALID_REQUEST: /);
    });

    it("refuses a list without 1.0 with FAILED_PRECONDITION", async () => {
      const error = await statusOf(client.initialize({ supportedProtocolVersions: ["2.0"] }));
      expect(error.code).toBe(Code.FailedPrecondition);
      expect(error.rawMessage).toMatch(/^UNSUPPORTED_PROTOCOL_VERSION: /);
    });
  });

  describe("Send", () => {
    it("runs a decision session to RESOLVED, then GetSession reports it", async () => {
      const sessionId = newSessionId();
      const start = sessionStart(sessionId, "coordinator", ["alice", "bob"]);
      const startAck = await send(start);
      expect(startAck).toMatchObject({
        ok: true,
        duplicate: false,
        messageId: start.messageId,
        sessionId,
        sessionState: SessionState.OPEN,
      });
      expect(startAck.acceptedAtUnixMs).toBeGreaterThan(0n);

      for (const env of [
        proposal(sessionId, "alice"),
        vote(sessionId, "alice"),
        vote(sessionId, "bob"),
      ]) {
        const ack = await send(env);
        expect(ack.ok, ack.error?.message).toBe(true);
        expect(ack.messageId).toBe(env.messageId);
      }
      const done = await send(commitment(sessionId, "coordinator"));
      expect(done.ok, done.error?.message).toBe(true);
      expect(done.sessionState).toBe(SessionState.RESOLVED);

      const { metadata } = await client.getSession({ sessionId }, { headers: bearer("alice") });
      expect(metadata).toMatchObject({
        sessionId,
        mode: "macp.mode.decision.v1",
        state: SessionState.RESOLVED,
        initiator: "coordinator",
        participants: ["alice", "bob"],
        modeVersion: "1.0.0",
        configurationVersion: "cfg-1",
      });
    });

    it("answers a duplicate with ok + duplicate", async () => {
      const sessionId = await startDecision();
      const env = proposal(sessionId, "alice");
      expect((await send(env)).ok).toBe(true);
      const again = await send(env);
      expect(again).toMatchObject({ ok: true, duplicate: true, messageId: env.messageId });
    });

    it("answers UNAUTHENTICATED as a NACK, not a status", async () => {
      const sessionId = newSessionId();
      const start = sessionStart(sessionId, "", ["alice"]);
      const ack = await send(start, undefined);
      expect(ack).toMatchObject({
        ok: false,
        duplicate: false,
        messageId: start.messageId,
        sessionId,
        sessionState: SessionState.UNSPECIFIED,
        error: {
          code: "UNAUTHENTICATED",
          sessionId,
          messageId: start.messageId,
        },
      });
      expect(ack.acceptedAtUnixMs).toBeGreaterThan(0n);
      expect(ack.error?.details.length).toBe(0);
    });

    it("answers kernel refusals as NACKs with the registry code", async () => {
      const sessionId = await startDecision();
      const cases: [Envelope, string, string][] = [
        [proposal(newSessionId(), "alice"), "alice", "SESSION_NOT_FOUND"],
        [proposal(sessionId, "mallory"), "mallory", "FORBIDDEN"],
        [
          sessionStart(sessionId, "coordinator", ["alice"]),
          "coordinator",
          "SESSION_ALREADY_EXISTS",
        ],
        [
          envelope({
            sessionId,
            sender: "alice",
            messageType: "Proposal",
            payload: new Uint8Array(),
            macpVersion: "2.0",
          }),
          "alice",
          "UNSUPPORTED_PROTOCOL_VERSION",
        ],
        [
          envelope({ sessionId, sender: "alice", messageType: "", payload: new Uint8Array() }),
          "alice",
          "INVALID_ENVELOPE",
        ],
        [proposal(sessionId, "bob"), "alice", "UNAUTHENTICATED"],
      ];
      for (const [env, agent, code] of cases) {
        const ack = await send(env, agent);
        expect(ack, code).toMatchObject({
          ok: false,
          messageId: env.messageId,
          sessionId: env.sessionId,
          sessionState: SessionState.UNSPECIFIED,
          error: { code, sessionId: env.sessionId, messageId: env.messageId },
        });
        expect(ack.error?.message, code).not.toBe("");
      }
    });

    it("answers a request without an envelope with INVALID_ARGUMENT", async () => {
      const error = await statusOf(client.send({}, { headers: bearer("alice") }));
      expect(error.code).toBe(Code.InvalidArgument);
      expect(error.rawMessage).toMatch(/^INVALID_REQUEST: /);
    });

    it("refuses an oversized request in the transport, and NACKs a large payload within the limit", async () => {
      const sessionId = await startDecision();
      const huge = proposal(sessionId, "alice", "big", new Uint8Array(1_048_576 + 100_000));
      const error = await statusOf(client.send({ envelope: huge }, { headers: bearer("alice") }));
      expect(error.code).toBe(Code.ResourceExhausted);

      const large = proposal(sessionId, "alice", "large", new Uint8Array(1_048_576 + 1000));
      const ack = await send(large);
      expect(ack.error?.code).toBe("PAYLOAD_TOO_LARGE");
    });
  });

  describe("GetSession", () => {
    it("answers with statuses: UNAUTHENTICATED, NOT_FOUND, PERMISSION_DENIED", async () => {
      const sessionId = await startDecision();
      const unauthenticated = await statusOf(client.getSession({ sessionId }));
      expect(unauthenticated.code).toBe(Code.Unauthenticated);
      expect(unauthenticated.rawMessage).toMatch(/^UNAUTHENTICATED: /);

      const missing = await statusOf(
        client.getSession({ sessionId: newSessionId() }, { headers: bearer("alice") }),
      );
      expect(missing.code).toBe(Code.NotFound);

      const outsider = await statusOf(
        client.getSession({ sessionId }, { headers: bearer("mallory") }),
      );
      expect(outsider.code).toBe(Code.PermissionDenied);
      expect(outsider.rawMessage).toMatch(/^FORBIDDEN: /);
    });
  });

  describe("CancelSession / SuspendSession / ResumeSession", () => {
    it("answers authn, lookup and authority failures with statuses", async () => {
      const sessionId = await startDecision();
      const unauthenticated = await statusOf(client.cancelSession({ sessionId, reason: "x" }));
      expect(unauthenticated.code).toBe(Code.Unauthenticated);

      const missing = await statusOf(
        client.cancelSession(
          { sessionId: newSessionId(), reason: "x" },
          { headers: bearer("coordinator") },
        ),
      );
      expect(missing.code).toBe(Code.NotFound);

      const notAuthority = await statusOf(
        client.cancelSession({ sessionId, reason: "x" }, { headers: bearer("mallory") }),
      );
      expect(notAuthority.code).toBe(Code.PermissionDenied);
      expect(notAuthority.rawMessage).toMatch(/^FORBIDDEN: /);
    });

    it("answers state errors with a NACK carrying the session id and an empty message id", async () => {
      const sessionId = await startDecision();
      const cancelled = await client.cancelSession(
        { sessionId, reason: "no longer needed" },
        { headers: bearer("coordinator") },
      );
      expect(cancelled.ack).toMatchObject({
        ok: true,
        sessionId,
        sessionState: SessionState.CANCELLED,
      });

      const suspended = await client.suspendSession(
        { sessionId, reason: "pause" },
        { headers: bearer("coordinator") },
      );
      expect(suspended.ack).toMatchObject({
        ok: false,
        duplicate: false,
        messageId: "",
        sessionId,
        sessionState: SessionState.UNSPECIFIED,
        error: { code: "SESSION_NOT_OPEN", sessionId, messageId: "" },
      });
      expect(suspended.ack?.acceptedAtUnixMs).toBeGreaterThan(0n);
    });

    it("suspends and resumes", async () => {
      const sessionId = await startDecision();
      const suspended = await client.suspendSession(
        { sessionId, reason: "pause" },
        { headers: bearer("coordinator") },
      );
      expect(suspended.ack?.sessionState).toBe(SessionState.SUSPENDED);
      const resumed = await client.resumeSession(
        { sessionId, reason: "go on" },
        { headers: bearer("coordinator") },
      );
      expect(resumed.ack?.sessionState).toBe(SessionState.OPEN);
    });
  });

  describe("StreamSession", () => {
    it("echoes the sender's own accepted envelope", async () => {
      const sessionId = newSessionId();
      const { frames, reader, abort } = openStream("coordinator");
      const start = sessionStart(sessionId, "coordinator", ["alice"]);
      frames.push(envelopeFrame(start));
      const echoed = envelopeOf(await reader.next());
      expect(echoed).toMatchObject({
        messageId: start.messageId,
        sessionId,
        sender: "coordinator",
        messageType: "SessionStart",
      });
      abort.abort();
    });

    it("replays history then follows live, without gap or duplicate", async () => {
      const sessionId = await startDecision();
      const first = proposal(sessionId, "alice");
      await send(first);

      const { frames, reader } = openStream("bob");
      frames.push(subscribeFrame(sessionId));
      const replayed = [envelopeOf(await reader.next()), envelopeOf(await reader.next())];
      expect(replayed.map((env) => env.messageType)).toEqual(["SessionStart", "Proposal"]);
      expect(replayed[1]?.messageId).toBe(first.messageId);

      const live = vote(sessionId, "alice");
      await send(live);
      expect(envelopeOf(await reader.next()).messageId).toBe(live.messageId);
      expect(await reader.quietFor(200)).toBe(true);

      // Half-close: the server ends the call with OK.
      frames.close();
      const end = await reader.drain();
      expect(end).toEqual({ items: [], error: undefined });
    });

    it("replays only what follows after_sequence", async () => {
      const sessionId = await startDecision();
      const first = proposal(sessionId, "alice");
      await send(first);
      const { frames, reader, abort } = openStream("bob");
      frames.push(subscribeFrame(sessionId, 1n));
      expect(envelopeOf(await reader.next()).messageId).toBe(first.messageId);
      abort.abort();
    });

    it("replays nothing when after_sequence is past the end, then goes live", async () => {
      const sessionId = await startDecision();
      const { frames, reader, abort } = openStream("bob");
      frames.push(subscribeFrame(sessionId, 100n));
      expect(await reader.quietFor(200)).toBe(true);
      const live = proposal(sessionId, "alice");
      await send(live);
      expect(envelopeOf(await reader.next()).messageId).toBe(live.messageId);
      abort.abort();
    });

    it("answers an unauthorized subscribe inline and keeps the stream open", async () => {
      const secret = await startDecision("coordinator", ["alice"]);
      const open = await startDecision("coordinator", ["mallory"]);
      const { frames, reader, abort } = openStream("mallory");
      frames.push(subscribeFrame(secret));
      const refused = await reader.next();
      expect(refused.response.case).toBe("error");
      expect(refused.response.value).toMatchObject({ code: "FORBIDDEN", sessionId: secret });

      // Still open and still unbound: a subscription mallory may make works.
      frames.push(subscribeFrame(open));
      expect(envelopeOf(await reader.next())).toMatchObject({
        sessionId: open,
        messageType: "SessionStart",
      });
      abort.abort();
    });

    it("ends the call with INVALID_ARGUMENT when a frame targets another session", async () => {
      const { frames, reader } = openStream("coordinator");
      const first = newSessionId();
      frames.push(envelopeFrame(sessionStart(first, "coordinator", ["alice"])));
      expect(envelopeOf(await reader.next()).sessionId).toBe(first);
      frames.push(envelopeFrame(sessionStart(newSessionId(), "coordinator", ["alice"])));
      const end = await reader.drain();
      expect(end.items).toEqual([]);
      expect(ConnectError.from(end.error).code).toBe(Code.InvalidArgument);
    });

    it("ends the call with UNAUTHENTICATED before reading frames", async () => {
      const frames = pushable<StreamSessionRequest>();
      const reader = new Reader(client.streamSession(frames));
      const end = await reader.drain();
      expect(ConnectError.from(end.error).code).toBe(Code.Unauthenticated);
    });
  });

  describe("StreamSession with a slow consumer", () => {
    let slowServer: GrpcServer;
    let slowClient: Client<typeof MACPRuntimeService>;

    beforeAll(async () => {
      slowServer = await startServer({
        runtime: newRuntime({ sessionStreamBuffer: 2 }),
        authenticate: devAuthenticate,
        port: 0,
      });
      slowClient = createClient(
        MACPRuntimeService,
        createGrpcTransport({ baseUrl: slowServer.url }),
      );
    });

    afterAll(async () => {
      await slowServer?.close({ drainMs: 1000 });
    });

    it("ends a subscriber that falls behind with RESOURCE_EXHAUSTED", async () => {
      const sessionId = newSessionId();
      const start = sessionStart(sessionId, "coordinator", ["alice", "bob"]);
      await slowClient.send({ envelope: start }, { headers: bearer("coordinator") });

      // A bare HTTP/2 call: it reads only when asked (client libraries read ahead).
      const call = await rawGrpcCall(
        slowServer.url,
        "/macp.v1.MACPRuntimeService/StreamSession",
        bearer("bob"),
      );
      call.write(toBinary(StreamSessionRequestSchema, subscribeFrame(sessionId)));
      const first = fromBinary(StreamSessionResponseSchema, await call.next());
      expect(envelopeOf(first).messageType).toBe("SessionStart");

      // Stop reading while large envelopes pile up: HTTP/2 flow control stalls
      // the server's writes, and the runtime's per-subscriber buffer (2) overflows.
      const bulk = new Uint8Array(256 * 1024);
      for (let i = 0; i < 8; i++) {
        const ack = await slowClient.send(
          { envelope: proposal(sessionId, "alice", `p${i}`, bulk) },
          { headers: bearer("alice") },
        );
        expect(ack.ack?.ok, ack.ack?.error?.message).toBe(true);
      }
      const end = await call.finish();
      call.close();
      expect(end.messages.length).toBeLessThan(8);
      expect(end.status).toBe(Code.ResourceExhausted);
      expect(end.message).toMatch(/^SUBSCRIBER_LAGGED: /);
    });
  });

  describe("watches", () => {
    it("WatchSessions starts with CREATED for known sessions, then follows", async () => {
      const sessionId = await startDecision();
      const abort = new AbortController();
      const reader = new Reader(
        client.watchSessions({}, { headers: bearer("observer"), signal: abort.signal }),
      );
      let event = (await reader.next()).event;
      while (event?.session?.sessionId !== sessionId) event = (await reader.next()).event;
      expect(event.eventType).toBe(SessionLifecycleEvent_EventType.CREATED);

      await client.cancelSession({ sessionId, reason: "done" }, { headers: bearer("coordinator") });
      let live = (await reader.next()).event;
      while (live?.session?.sessionId !== sessionId) live = (await reader.next()).event;
      expect(live.eventType).toBe(SessionLifecycleEvent_EventType.CANCELLED);
      abort.abort();
    });

    it("WatchSessions needs credentials", async () => {
      const end = await new Reader(client.watchSessions({})).drain();
      expect(ConnectError.from(end.error).code).toBe(Code.Unauthenticated);
    });

    it("WatchModeRegistry sends an initial hint without credentials", async () => {
      const abort = new AbortController();
      const reader = new Reader(client.watchModeRegistry({}, { signal: abort.signal }));
      const first = await reader.next();
      expect(first.change?.registry).toBe("modes");
      abort.abort();
    });

    it("WatchRoots sends an initial hint without credentials", async () => {
      const abort = new AbortController();
      const reader = new Reader(client.watchRoots({}, { signal: abort.signal }));
      expect((await reader.next()).change?.observedAtUnixMs).toBeGreaterThan(0n);
      abort.abort();
    });
  });

  describe("discovery without credentials", () => {
    it("serves ListModes, ListExtModes, ListRoots and GetManifest", async () => {
      const modes = await client.listModes({});
      expect(modes.modes.map((mode) => mode.mode)).toContain("macp.mode.decision.v1");
      const ext = await client.listExtModes({});
      expect(ext.modes.map((mode) => mode.mode)).toContain("ext.multi_round.v1");
      expect((await client.listRoots({})).roots).toEqual([]);
      const manifest = await client.getManifest({ agentId: "" });
      expect(manifest.manifest?.supportedModes.length).toBeGreaterThan(0);
      const unknown = await statusOf(client.getManifest({ agentId: "someone-else" }));
      expect(unknown.code).toBe(Code.NotFound);
    });

    it("requires credentials for ListSessions and policy reads", async () => {
      expect((await statusOf(client.listSessions({}))).code).toBe(Code.Unauthenticated);
      expect((await statusOf(client.listPolicies({}))).code).toBe(Code.Unauthenticated);
      const listed = await client.listPolicies({}, { headers: bearer("alice") });
      expect(listed.descriptors.map((policy) => policy.policyId)).toContain("policy.default");
    });
  });

  describe("WatchSignals and ListSessions", () => {
    it("relays ambient Signals to authenticated watchers", async () => {
      const abort = new AbortController();
      const reader = new Reader(
        client.watchSignals({}, { headers: bearer("observer"), signal: abort.signal }),
      );
      // The watcher is attached once its call is open; give it a moment before signalling.
      expect(await reader.quietFor(100)).toBe(true);
      const signal = envelope({
        sessionId: "",
        mode: "",
        sender: "alice",
        messageType: "Signal",
        payload: toBinary(SignalPayloadSchema, create(SignalPayloadSchema, { signalType: "ping" })),
      });
      const ack = await send(signal);
      expect(ack.ok, ack.error?.message).toBe(true);
      expect((await reader.next()).envelope?.messageId).toBe(signal.messageId);
      abort.abort();
    });

    it("lists sessions for an authenticated caller", async () => {
      const sessionId = await startDecision();
      const listed = await client.listSessions({ pageSize: 1000 }, { headers: bearer("mallory") });
      expect(listed.sessions.map((session) => session.sessionId)).toContain(sessionId);
    });
  });

  describe("registries", () => {
    const descriptor = {
      mode: "ext.wire-test.v1",
      modeVersion: "1.0.0",
      title: "Wire test",
      messageTypes: ["SessionStart", "Note", "Commitment"],
      terminalMessageTypes: ["Commitment"],
    };

    it("answers mode registry mutations with {ok, error} bodies", async () => {
      const admin = { headers: bearer("admin") };
      expect(await client.registerExtMode({ modeDescriptor: descriptor }, admin)).toMatchObject({
        ok: true,
        error: "",
      });
      const again = await client.registerExtMode({ modeDescriptor: descriptor }, admin);
      expect(again.ok).toBe(false);
      expect(again.error).not.toBe("");
      expect((await client.listExtModes({})).modes.map((mode) => mode.mode)).toContain(
        descriptor.mode,
      );
      const promoted = await client.promoteMode(
        { mode: descriptor.mode, promotedModeName: "ext.wire-test.promoted.v1" },
        admin,
      );
      expect(promoted).toMatchObject({ ok: true, mode: "ext.wire-test.promoted.v1" });
      const gone = await client.unregisterExtMode({ mode: "ext.nothing.v1" }, admin);
      expect(gone.ok).toBe(false);
    });

    it("answers authn and missing-descriptor failures with statuses", async () => {
      const anonymous = await statusOf(client.registerExtMode({ modeDescriptor: descriptor }));
      expect(anonymous.code).toBe(Code.Unauthenticated);
      const missing = await statusOf(client.registerExtMode({}, { headers: bearer("admin") }));
      expect(missing.code).toBe(Code.InvalidArgument);
      const noPolicy = await statusOf(client.registerPolicy({}, { headers: bearer("admin") }));
      expect(noPolicy.code).toBe(Code.InvalidArgument);
    });

    it("refuses rules nested 3,000 levels deep with INVALID_POLICY_DEFINITION (regression: answered INTERNAL)", async () => {
      const admin = { headers: bearer("admin") };
      const depth = 3000;
      const refused = await client.registerPolicy(
        {
          policyDescriptor: {
            policyId: "policy.deep",
            mode: "macp.mode.decision.v1",
            rules: `{"voting":${'{"n":'.repeat(depth)}1${"}".repeat(depth)}}`,
            schemaVersion: 1,
          },
        },
        admin,
      );
      expect(refused.ok).toBe(false);
      expect(refused.error).toMatch(/^INVALID_POLICY_DEFINITION: rules nest deeper than/);
      // The server is unharmed and the id was not taken.
      const missing = await statusOf(client.getPolicy({ policyId: "policy.deep" }, admin));
      expect(missing.code).toBe(Code.NotFound);
      const initialized = await client.initialize({ supportedProtocolVersions: ["1.0"] });
      expect(initialized.selectedProtocolVersion).toBe("1.0");
    });

    it("serves the policy registry", async () => {
      const admin = { headers: bearer("admin") };
      const got = await client.getPolicy({ policyId: "policy.default" }, admin);
      expect(got.policyDescriptor?.policyId).toBe("policy.default");
      const missing = await statusOf(client.getPolicy({ policyId: "policy.none" }, admin));
      expect(missing.code).toBe(Code.NotFound);
      const refused = await client.registerPolicy(
        {
          policyDescriptor: {
            policyId: "policy.bad",
            mode: "macp.mode.decision.v1",
            rules: "not json",
            schemaVersion: 1,
          },
        },
        admin,
      );
      expect(refused.ok).toBe(false);
      expect(refused.error).not.toBe("");
      const unregistered = await client.unregisterPolicy({ policyId: "policy.none" }, admin);
      expect(unregistered.ok).toBe(false);

      const abort = new AbortController();
      const snapshots = new Reader(client.watchPolicies({}, { signal: abort.signal }));
      const first = await snapshots.next();
      expect(first.descriptors.map((policy) => policy.policyId)).toContain("policy.default");
      abort.abort();
    });
  });

  describe("grpc.health.v1.Health", () => {
    it("reports SERVING for the server and the MACP service, NOT_FOUND otherwise", async () => {
      const { SERVING } = health.HealthCheckResponse_ServingStatus;
      expect((await healthClient.check({ service: "" })).status).toBe(SERVING);
      expect((await healthClient.check({ service: "macp.v1.MACPRuntimeService" })).status).toBe(
        SERVING,
      );
      const unknown = await statusOf(healthClient.check({ service: "nope.Service" }));
      expect(unknown.code).toBe(Code.NotFound);
    });

    it("Watch reports SERVICE_UNKNOWN for an unknown name and keeps the call open", async () => {
      const abort = new AbortController();
      const reader = new Reader(
        healthClient.watch({ service: "nope.Service" }, { signal: abort.signal }),
      );
      expect((await reader.next()).status).toBe(
        health.HealthCheckResponse_ServingStatus.SERVICE_UNKNOWN,
      );
      expect(await reader.quietFor(100)).toBe(true);
      abort.abort();
    });
  });
});
