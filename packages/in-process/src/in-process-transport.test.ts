import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createWritableIterable } from "@connectrpc/connect/protocol";
import {
  type Caller,
  createIdentity,
  createRuntime,
  type Identity,
  type MacpRuntime,
} from "@macp/core";
import { SimulatedClock } from "@macp/core/testing";
import {
  type Envelope,
  EnvelopeSchema,
  MACPRuntimeService,
  SessionLifecycleEvent_EventType,
  SessionStartPayloadSchema,
  SessionState,
  SignalPayloadSchema,
  type StreamSessionRequest,
  StreamSessionRequestSchema,
} from "@macp/proto";
import { afterEach, describe, expect, it } from "vitest";
import { createInProcessTransport } from "./in-process-transport.js";

const ALICE = "agent://alice";
const BOB = "agent://bob";
const SESSION = "in-process-session-000001";
const OTHER_SESSION = "in-process-session-000002";

let clock: SimulatedClock;
let runtime: MacpRuntime;

afterEach(async () => {
  await runtime.close();
});

function setup(): void {
  clock = new SimulatedClock();
  runtime = createRuntime({ clock });
}

function clientAs(identity: Identity | string) {
  return createClient(MACPRuntimeService, createInProcessTransport(runtime, { identity, clock }));
}

function envelope(
  messageType: string,
  messageId: string,
  options: { sessionId?: string; sender?: string; payload?: Uint8Array } = {},
): Envelope {
  return create(EnvelopeSchema, {
    macpVersion: "1.0",
    mode: "macp.mode.decision.v1",
    messageType,
    messageId,
    sessionId: options.sessionId ?? SESSION,
    sender: options.sender ?? ALICE,
    timestampUnixMs: BigInt(clock.now()),
    payload: options.payload ?? new Uint8Array(),
  });
}

function sessionStart(sessionId = SESSION): Envelope {
  return envelope("SessionStart", `start-${sessionId}`, {
    sessionId,
    payload: toBinary(
      SessionStartPayloadSchema,
      create(SessionStartPayloadSchema, {
        participants: [ALICE, BOB],
        modeVersion: "1.0.0",
        configurationVersion: "cfg-1",
        ttlMs: 60_000n,
      }),
    ),
  });
}

const frame = (value: Envelope | string): StreamSessionRequest =>
  create(
    StreamSessionRequestSchema,
    typeof value === "string" ? { subscribeSessionId: value } : { envelope: value },
  );

/**
 * Passes everything to the real runtime, and keeps the signal each session
 * stream was opened with: the only outside view of whether the server side of
 * a call has ended.
 */
function observingStreams(inner: MacpRuntime, signals: AbortSignal[]): MacpRuntime {
  return new Proxy(inner, {
    get(target, property) {
      if (property === "openSessionStream") {
        return (caller: Caller, signal?: AbortSignal) => {
          if (signal !== undefined) signals.push(signal);
          return target.openSessionStream(caller, signal);
        };
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

describe("createInProcessTransport: unary RPCs", () => {
  it("serves the same routes as the server", async () => {
    setup();
    const alice = clientAs(ALICE);
    const initialized = await alice.initialize({ supportedProtocolVersions: ["1.0"] });
    expect(initialized.selectedProtocolVersion).toBe("1.0");
    expect((await alice.listModes({})).modes.map((mode) => mode.mode)).toContain(
      "macp.mode.decision.v1",
    );
    expect((await alice.listExtModes({})).modes).toBeDefined();
    expect((await alice.listRoots({})).roots).toBeDefined();
    expect((await alice.getManifest({ agentId: "" })).manifest).toBeDefined();

    const started = await alice.send({ envelope: sessionStart() });
    expect(started.ack).toMatchObject({
      ok: true,
      sessionId: SESSION,
      acceptedAtUnixMs: BigInt(clock.now()),
      sessionState: SessionState.OPEN,
    });
    const { metadata } = await clientAs(BOB).getSession({ sessionId: SESSION });
    expect(metadata?.initiator).toBe(ALICE);
    const listed = await alice.listSessions({});
    expect(listed.sessions.map((session) => session.sessionId)).toEqual([SESSION]);

    expect((await alice.suspendSession({ sessionId: SESSION, reason: "lunch" })).ack?.ok).toBe(
      true,
    );
    expect((await alice.resumeSession({ sessionId: SESSION, reason: "back" })).ack?.ok).toBe(true);
    const cancelled = await alice.cancelSession({ sessionId: SESSION, reason: "done" });
    expect(cancelled.ack?.sessionState).toBe(SessionState.CANCELLED);
  });

  it("answers refusals as the server does: NACKs on the simulated clock, statuses as ConnectErrors", async () => {
    setup();
    const alice = clientAs(ALICE);
    await alice.send({ envelope: sessionStart() });
    clock.advance(5);
    const duplicate = await alice.send({ envelope: sessionStart() });
    expect(duplicate.ack).toMatchObject({ ok: true, duplicate: true });
    const vote = await clientAs("agent://mallory").send({
      envelope: envelope("Vote", "v1", { sender: "agent://mallory" }),
    });
    expect(vote.ack).toMatchObject({ ok: false, acceptedAtUnixMs: BigInt(clock.now()) });
    expect(vote.ack?.error?.code).toBe("FORBIDDEN");

    const missing = await alice.getSession({ sessionId: OTHER_SESSION }).catch((e) => e);
    expect(missing).toBeInstanceOf(ConnectError);
    expect((missing as ConnectError).code).toBe(Code.NotFound);
  });

  it("takes the caller from a fixed identity, and ignores headers", async () => {
    setup();
    const restricted = createIdentity({ sender: ALICE, canStartSessions: false });
    const alice = clientAs(restricted);
    const refused = await alice.send(
      { envelope: sessionStart() },
      { headers: { authorization: "Bearer someone-else" } },
    );
    expect(refused.ack?.error?.code).toBe("FORBIDDEN");
    const impersonating = await alice.send({ envelope: envelope("Vote", "v1", { sender: BOB }) });
    expect(impersonating.ack?.error?.code).toBe("UNAUTHENTICATED");
    const registry = await alice
      .registerExtMode({ modeDescriptor: { mode: "ext.x.v1" } })
      .catch((e) => ConnectError.from(e).code);
    expect(registry).toBe(Code.PermissionDenied);
  });

  it("passes the caller's headers to an authenticate hook, as the server does", async () => {
    setup();
    const tokens = new Map([["alice-token", createIdentity({ sender: ALICE })]]);
    const seen: (string | null)[] = [];
    const transport = createInProcessTransport(runtime, {
      clock,
      authenticate(headers): Caller {
        const authorization = headers.get("authorization");
        seen.push(authorization);
        const identity = tokens.get(authorization?.replace(/^Bearer /, "") ?? "");
        return identity ?? { unauthenticated: "unknown token" };
      },
    });
    const client = createClient(MACPRuntimeService, transport);
    const accepted = await client.send(
      { envelope: sessionStart() },
      { headers: { authorization: "Bearer alice-token" } },
    );
    expect(accepted.ack?.ok).toBe(true);
    const anonymous = await client.send({ envelope: envelope("Vote", "v1") });
    expect(anonymous.ack?.error?.code).toBe("UNAUTHENTICATED");
    const status = await client
      .getSession({ sessionId: SESSION }, { headers: { authorization: "Bearer nope" } })
      .catch((e) => ConnectError.from(e).code);
    expect(status).toBe(Code.Unauthenticated);
    expect(seen).toEqual(["Bearer alice-token", null, "Bearer nope"]);
  });

  it("needs exactly one of identity and authenticate", () => {
    setup();
    expect(() => createInProcessTransport(runtime, {} as never)).toThrow(TypeError);
    expect(() =>
      createInProcessTransport(runtime, {
        identity: ALICE,
        authenticate: () => createIdentity({ sender: ALICE }),
      } as never),
    ).toThrow(TypeError);
  });

  it("passes the server's request-size limit and shutdown signal through", async () => {
    setup();
    const shutdown = new AbortController();
    const client = createClient(
      MACPRuntimeService,
      createInProcessTransport(runtime, {
        identity: ALICE,
        clock,
        maxReceiveMessageBytes: 64,
        shutdownSignal: shutdown.signal,
      }),
    );
    const big = envelope("Proposal", "p", { payload: new Uint8Array(100) });
    const refused = await client.send({ envelope: big }).catch((e) => ConnectError.from(e).code);
    expect(refused).toBe(Code.ResourceExhausted);

    const roots = client.watchRoots({})[Symbol.asyncIterator]();
    await roots.next();
    const pending = roots.next();
    shutdown.abort();
    await expect(pending).rejects.toMatchObject({ code: Code.Unavailable });
  });

  it("can encode messages as JSON instead of binary", async () => {
    setup();
    const client = createClient(
      MACPRuntimeService,
      createInProcessTransport(runtime, { identity: ALICE, clock, useBinaryFormat: false }),
    );
    expect((await client.send({ envelope: sessionStart() })).ack?.ok).toBe(true);
  });
});

describe("createInProcessTransport: server-streaming RPCs", () => {
  it("WatchSessions: the current sessions, then every lifecycle event", async () => {
    setup();
    const alice = clientAs(ALICE);
    await alice.send({ envelope: sessionStart() });
    const stop = new AbortController();
    const events = alice.watchSessions({}, { signal: stop.signal })[Symbol.asyncIterator]();
    const first = await events.next();
    expect(first.value?.event?.eventType).toBe(SessionLifecycleEvent_EventType.CREATED);
    await alice.cancelSession({ sessionId: SESSION, reason: "done" });
    const second = await events.next();
    expect(second.value?.event).toMatchObject({
      eventType: SessionLifecycleEvent_EventType.CANCELLED,
      observedAtUnixMs: BigInt(clock.now()),
    });
    const pending = events.next();
    stop.abort();
    await expect(pending).rejects.toMatchObject({ code: Code.Canceled });
  });

  it("WatchSignals: every Signal accepted after it subscribed", async () => {
    setup();
    const stop = new AbortController();
    const signals = clientAs(ALICE)
      .watchSignals({}, { signal: stop.signal })
      [Symbol.asyncIterator]();
    let received: Envelope | undefined;
    void signals.next().then((result) => {
      received = result.value?.envelope;
    });
    // WatchSignals sends nothing until a signal arrives, so a client cannot
    // tell when it is subscribed: signals are ephemeral, and one published
    // before that is not delivered. Bob repeats until Alice has one.
    for (let n = 1; received === undefined; n++) {
      const ack = await clientAs(BOB).send({
        envelope: create(EnvelopeSchema, {
          macpVersion: "1.0",
          messageType: "Signal",
          messageId: `s${n}`,
          sender: BOB,
          payload: toBinary(
            SignalPayloadSchema,
            create(SignalPayloadSchema, { signalType: "busy" }),
          ),
        }),
      });
      expect(ack.ack?.ok).toBe(true);
      expect(n).toBeLessThan(10);
    }
    expect(received).toMatchObject({ messageType: "Signal", sender: BOB });
    stop.abort();
  });

  it("WatchModeRegistry, WatchRoots, WatchPolicies: an initial message, then changes", async () => {
    setup();
    const alice = clientAs(ALICE);
    const stop = new AbortController();
    const modes = alice.watchModeRegistry({}, { signal: stop.signal })[Symbol.asyncIterator]();
    const roots = alice.watchRoots({}, { signal: stop.signal })[Symbol.asyncIterator]();
    const policies = alice.watchPolicies({}, { signal: stop.signal })[Symbol.asyncIterator]();
    expect((await modes.next()).value?.change?.registry).toBe("modes");
    expect((await roots.next()).value?.change?.observedAtUnixMs).toBe(BigInt(clock.now()));
    const initial = (await policies.next()).value?.descriptors.length ?? 0;

    const registered = await alice.registerPolicy({
      policyDescriptor: {
        policyId: "policy.test.any",
        mode: "macp.mode.decision.v1",
        description: "test",
        rules: "{}",
        schemaVersion: 1,
      },
    });
    expect(registered.ok).toBe(true);
    expect((await policies.next()).value?.descriptors).toHaveLength(initial + 1);
    const extension = await alice.registerExtMode({
      modeDescriptor: {
        mode: "ext.test.v1",
        modeVersion: "1.0.0",
        title: "test",
        messageTypes: ["Note", "Commitment"],
        terminalMessageTypes: ["Commitment"],
      },
    });
    expect(extension).toMatchObject({ ok: true, error: "" });
    expect((await modes.next()).value?.change?.registry).toBe("modes");
    stop.abort();
  });
});

describe("createInProcessTransport: StreamSession (bidirectional)", () => {
  it("echoes accepted envelopes to every stream bound to the session, in order", async () => {
    setup();
    const aliceFrames = createWritableIterable<StreamSessionRequest>();
    const bobFrames = createWritableIterable<StreamSessionRequest>();
    const aliceOut = clientAs(ALICE).streamSession(aliceFrames)[Symbol.asyncIterator]();
    const bobOut = clientAs(BOB).streamSession(bobFrames)[Symbol.asyncIterator]();

    await aliceFrames.write(frame(sessionStart()));
    expect((await aliceOut.next()).value?.response.value).toMatchObject({
      messageType: "SessionStart",
    });
    await bobFrames.write(frame(SESSION));
    expect((await bobOut.next()).value?.response.value).toMatchObject({
      messageType: "SessionStart",
    });
    // A unary Send reaches both streams too.
    await clientAs(ALICE).send({ envelope: envelope("Proposal", "p", { payload: proposal() }) });
    expect((await aliceOut.next()).value?.response.value).toMatchObject({ messageId: "p" });
    expect((await bobOut.next()).value?.response.value).toMatchObject({ messageId: "p" });

    // Half-close: each stream ends cleanly once flushed.
    aliceFrames.close();
    bobFrames.close();
    expect((await aliceOut.next()).done).toBe(true);
    expect((await bobOut.next()).done).toBe(true);
  });

  it("sends refusals inline and keeps the stream open", async () => {
    setup();
    await clientAs(ALICE).send({ envelope: sessionStart() });
    const frames = createWritableIterable<StreamSessionRequest>();
    const out = clientAs("agent://mallory").streamSession(frames)[Symbol.asyncIterator]();
    void frames.write(frame(envelope("Vote", "v1", { sender: "agent://mallory" })));
    const inline = (await out.next()).value?.response;
    expect(inline?.case).toBe("error");
    expect(inline?.value).toMatchObject({ code: "FORBIDDEN", sessionId: SESSION, messageId: "v1" });
    frames.close();
    expect((await out.next()).done).toBe(true);
  });

  it("ends the call with a status on a terminal error, and the server side with it", async () => {
    setup();
    const signals: AbortSignal[] = [];
    runtime = observingStreams(runtime, signals);
    const frames = createWritableIterable<StreamSessionRequest>();
    const out = clientAs(ALICE).streamSession(frames)[Symbol.asyncIterator]();
    await frames.write(frame(sessionStart()));
    await out.next();
    void frames.write(frame(sessionStart(OTHER_SESSION))).catch(() => {});
    const failure = await out.next().catch((e) => ConnectError.from(e));
    expect(failure).toMatchObject({ code: Code.InvalidArgument });
    expect(signals[0]?.aborted).toBe(true);
  });

  it("is cancelled by the call's AbortSignal, on both sides", async () => {
    setup();
    const signals: AbortSignal[] = [];
    runtime = observingStreams(runtime, signals);
    await clientAs(ALICE).send({ envelope: sessionStart() });
    const stop = new AbortController();
    const frames = createWritableIterable<StreamSessionRequest>();
    const out = clientAs(BOB)
      .streamSession(frames, { signal: stop.signal })
      [Symbol.asyncIterator]();
    void frames.write(frame(SESSION));
    expect((await out.next()).value?.response.case).toBe("envelope");
    const pending = out.next();
    stop.abort();
    await expect(pending).rejects.toMatchObject({ code: Code.Canceled });
    expect(signals[0]?.aborted).toBe(true);
    // The request side is closed too: writing now fails instead of hanging.
    await expect(frames.write(frame(SESSION))).rejects.toThrow();
  });

  it("ends open streams when the runtime closes", async () => {
    setup();
    await clientAs(ALICE).send({ envelope: sessionStart() });
    const frames = createWritableIterable<StreamSessionRequest>();
    const out = clientAs(BOB).streamSession(frames)[Symbol.asyncIterator]();
    void frames.write(frame(SESSION));
    await out.next();
    const watch = clientAs(BOB).watchSessions({})[Symbol.asyncIterator]();
    await watch.next();
    const ends = [out.next(), watch.next()];
    await runtime.close();
    expect((await Promise.all(ends)).map((result) => result.done)).toEqual([true, true]);
  });
});

function proposal(): Uint8Array {
  // decision.ProposalPayload { proposal_id: "p1", option: "x" }, hand-encoded to keep this file mode-agnostic.
  return new Uint8Array([0x0a, 0x02, 0x70, 0x31, 0x12, 0x01, 0x78]);
}
