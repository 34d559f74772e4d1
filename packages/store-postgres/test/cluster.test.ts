import { connect, createServer, type Server, type Socket } from "node:net";
import { create, toBinary } from "@bufbuild/protobuf";
import {
  createDevIdentity,
  createIdentity,
  createRuntime,
  type Identity,
  type MacpRuntime,
} from "@macp/core";
import { extModeDescriptor } from "@macp/core/testing";
import {
  CommitmentPayloadSchema,
  type Envelope,
  EnvelopeSchema,
  SessionLifecycleEvent_EventType as EventType,
  type PolicyDescriptor,
  type SessionLifecycleEvent,
  SessionStartPayloadSchema,
  SessionState,
  SignalPayloadSchema,
  StreamSessionRequestSchema,
} from "@macp/proto";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createPostgresStore, type PostgresStore } from "../src/index.js";
import { startThrowawayPostgres, type ThrowawayPostgres } from "../src/testing/index.js";
import { sendAs } from "./cluster-driver.js";

const MODE = "ext.chat.v1";
const PARTICIPANTS = ["agent://a", "agent://b", "agent://c"];
let db: ThrowawayPostgres;
let url: string;
let now = 1_750_000_000_000;
const clock = { now: () => now };
const opened: MacpRuntime[] = [];
const stores = new Map<MacpRuntime, PostgresStore>();
let counter = 0;

/** An opaque session id (22+ characters from [A-Za-z0-9_-]). */
function sid(name: string): string {
  return `${name}-`.padEnd(24, "0");
}

async function instance(databaseUrl = url): Promise<MacpRuntime> {
  const store = await createPostgresStore({ url: databaseUrl, timeoutMs: 2000 });
  const runtime = createRuntime({ clock, store });
  await runtime.recover();
  opened.push(runtime);
  stores.set(runtime, store);
  return runtime;
}

async function cluster(size = 3): Promise<MacpRuntime[]> {
  const instances: MacpRuntime[] = [];
  for (let i = 0; i < size; i++) instances.push(await instance());
  return instances;
}

function envelope(fields: {
  messageType: string;
  sender: string;
  sessionId?: string;
  mode?: string;
  messageId?: string;
  payload?: Uint8Array;
}): Envelope {
  return create(EnvelopeSchema, {
    macpVersion: "1.0",
    mode: MODE,
    messageId: `m${++counter}`,
    timestampUnixMs: BigInt(now),
    ...fields,
  });
}

function start(sessionId: string, sender = "agent://a", ttlMs = 60_000): Envelope {
  return envelope({
    messageType: "SessionStart",
    sessionId,
    sender,
    payload: toBinary(
      SessionStartPayloadSchema,
      create(SessionStartPayloadSchema, {
        participants: PARTICIPANTS,
        ttlMs: BigInt(ttlMs),
        modeVersion: "1.0.0",
      }),
    ),
  });
}

function chat(sessionId: string, sender: string, messageId?: string): Envelope {
  return envelope({
    messageType: "Message",
    sessionId,
    sender,
    payload: new TextEncoder().encode(`from ${sender}`),
    ...(messageId === undefined ? {} : { messageId }),
  });
}

async function registerChat(runtime: MacpRuntime): Promise<void> {
  const outcome = runtime.registerExtMode(
    extModeDescriptor(MODE, "Chat"),
    createDevIdentity("agent://admin"),
  );
  expect(outcome.isOk() && outcome.value.ok).toBe(true);
  expect((await runtime.registryCommitted?.())?.isOk()).toBe(true);
}

/** The answer to the latest registry mutation (durable and applied, or the write's error). */
function committed(
  runtime: MacpRuntime,
): ReturnType<NonNullable<MacpRuntime["registryCommitted"]>> {
  const answer = runtime.registryCommitted?.();
  if (answer === undefined) throw new Error("this runtime does not report registry writes");
  return answer;
}

function policy(policyId: string, description: string): PolicyDescriptor {
  return {
    $typeName: "macp.v1.PolicyDescriptor",
    policyId,
    mode: "*",
    description,
    rules: "{}",
    schemaVersion: 1,
    registeredAtUnixMs: 0n,
  };
}

function policyDescription(runtime: MacpRuntime, policyId: string): string | undefined {
  const found = runtime.getPolicy(policyId, createDevIdentity("agent://admin"));
  return found.isOk() ? found.value.description : undefined;
}

async function take<T>(iterable: AsyncIterable<T>, count: number): Promise<T[]> {
  const out: T[] = [];
  if (count === 0) return out;
  for await (const item of iterable) {
    out.push(item);
    if (out.length === count) break;
  }
  return out;
}

const observer: Identity = createIdentity({ sender: "agent://observer", isObserver: true });

beforeAll(async () => {
  db = await startThrowawayPostgres();
  url = await db.createDatabase("cluster");
  await registerChat(await instance());
});

afterEach(async () => {
  for (const runtime of opened.splice(0)) await runtime.close();
});

afterAll(async () => {
  await db?.stop();
});

describe("several instances on one PostgreSQL database", () => {
  it("shares the mode registry: a mode registered on one instance starts sessions on another", async () => {
    const [a, b] = await cluster(2);
    const mode = "ext.shared.v1";
    const registered = (a as MacpRuntime).registerExtMode(
      extModeDescriptor(mode),
      createDevIdentity("agent://admin"),
    );
    expect(registered.isOk()).toBe(true);
    await (a as MacpRuntime).registryCommitted?.();
    const ack = await sendAs(b as MacpRuntime, { ...start(sid("shared-mode")), mode });
    expect(ack.error?.code).toBeUndefined();
    expect(ack.ok).toBe(true);
  });

  it("applies concurrent registry changes on every instance in the log's one order", async () => {
    const [a, b] = (await cluster(2)) as [MacpRuntime, MacpRuntime];
    const id = "policy.test.contested";
    const described = (runtime: MacpRuntime) =>
      take(runtime.watchPolicies(), 3).then((snapshots) =>
        snapshots.map((s) => s.descriptors.find((d) => d.policyId === id)?.description),
      );
    const watches = [described(a), described(b)];
    const admin = createDevIdentity("agent://admin");
    expect(a.registerPolicy(policy(id, "from a"), admin)._unsafeUnwrap().ok).toBe(true);
    const fromA = committed(a);
    expect(b.registerPolicy(policy(id, "from b"), admin)._unsafeUnwrap().ok).toBe(true);
    const fromB = committed(b);
    expect((await fromA).isOk() && (await fromB).isOk()).toBe(true);
    const [seenOnA, seenOnB] = await Promise.all(watches);
    expect(seenOnA?.[0]).toBeUndefined();
    expect(new Set(seenOnA?.slice(1))).toEqual(new Set(["from a", "from b"]));
    expect(seenOnB).toEqual(seenOnA);
    const restarted = await instance();
    expect(policyDescription(restarted, id)).toBe(seenOnA?.[2]);
  });

  it("concurrent writers on every instance into one session: each accepted once, one order everywhere", async () => {
    const instances = await cluster(3);
    const sessionId = sid("concurrent-writers");
    expect((await sendAs(instances[1] as MacpRuntime, start(sessionId))).ok).toBe(true);
    const perWriter = 25;
    const acks = await Promise.all(
      instances.map(async (runtime, index) => {
        const sender = PARTICIPANTS[index] as string;
        const out = [];
        for (let i = 0; i < perWriter; i++)
          out.push(await sendAs(runtime, chat(sessionId, sender)));
        return out;
      }),
    );
    const all = acks.flat();
    expect(all.filter((ack) => !ack.ok)).toEqual([]);
    expect(all.filter((ack) => ack.duplicate)).toEqual([]);
    const histories = await Promise.all(instances.map((runtime) => runtime.readHistory(sessionId)));
    const ids = (histories[0] ?? []).map((e) => e.messageId);
    expect(ids).toHaveLength(1 + 3 * perWriter);
    expect(new Set(ids).size).toBe(ids.length);
    for (const ack of all) expect(ids).toContain(ack.messageId);
    for (const runtime of instances) {
      expect((await runtime.getSession(sessionId, observer)).isOk()).toBe(true);
      expect(runtime.inspectSession(sessionId)?.acceptedCount).toBe(ids.length);
    }
    expect(instances.map((r) => r.inspectSession(sessionId))).toEqual(
      instances.map(() => instances[0]?.inspectSession(sessionId)),
    );
  });

  it("acknowledges a retry on another instance as a duplicate", async () => {
    const [a, b, c] = (await cluster(3)) as [MacpRuntime, MacpRuntime, MacpRuntime];
    const opening = start(sid("retry"));
    expect((await sendAs(a, opening)).ok).toBe(true);
    const retriedStart = await sendAs(c, opening);
    expect(retriedStart.ok && retriedStart.duplicate).toBe(true);
    const message = chat(sid("retry"), "agent://b");
    const first = await sendAs(a, message);
    expect(first.ok && !first.duplicate).toBe(true);
    const retry = await sendAs(b, message);
    expect(retry.ok && retry.duplicate).toBe(true);
    expect((await c.readHistory(sid("retry"))).map((e) => e.messageId)).toEqual([
      opening.messageId,
      message.messageId,
    ]);
  });

  it("refuses the loser of two concurrent starts of one session id", async () => {
    const instances = await cluster(3);
    for (let round = 0; round < 5; round++) {
      const sessionId = sid(`contested-${round}`);
      const acks = await Promise.all(instances.map((runtime) => sendAs(runtime, start(sessionId))));
      expect(acks.filter((ack) => ack.ok)).toHaveLength(1);
      expect(acks.filter((ack) => !ack.ok).map((ack) => ack.error?.code)).toEqual([
        "SESSION_ALREADY_EXISTS",
        "SESSION_ALREADY_EXISTS",
      ]);
    }
  });

  it("counts max_open_sessions over the whole cluster", async () => {
    const instances = await cluster(3);
    const capped = createIdentity({ sender: "agent://capped", maxOpenSessions: 2 });
    const acks = await Promise.all(
      [0, 1, 2, 3, 4, 5].map(async (i) => {
        const runtime = instances[i % 3] as MacpRuntime;
        const result = await runtime.send(start(sid(`capped-${i}`), "agent://capped"), capped);
        return result.isOk() ? "ok" : result.error.code;
      }),
    );
    expect(acks.filter((a) => a === "ok")).toHaveLength(2);
    expect(acks.filter((a) => a === "RATE_LIMITED")).toHaveLength(4);
  });

  it("streams what one instance accepts to subscribers and watchers on another, in order", async () => {
    const [a, b] = (await cluster(2)) as [MacpRuntime, MacpRuntime];
    const sessionId = sid("fan-out");
    const abort = new AbortController();
    const lifecycle = a.watchSessions(observer, abort.signal)._unsafeUnwrap();
    const signals = a.watchSignals(observer, abort.signal)._unsafeUnwrap();
    // The watch opens with a CREATED per known session; this session's events follow.
    const lifecycleEvents = (async () => {
      const mine: SessionLifecycleEvent[] = [];
      for await (const event of lifecycle) {
        if (event.session?.sessionId !== sessionId) continue;
        mine.push(event);
        if (event.eventType === EventType.RESOLVED) break;
      }
      return mine;
    })();
    const signalEvents = take(signals, 3);
    const opening = start(sessionId);
    expect((await sendAs(b, opening)).ok).toBe(true);
    // A passive subscriber on A, attached while B keeps writing.
    const stream = a.openSessionStream(observer, abort.signal)._unsafeUnwrap();
    await stream.push(create(StreamSessionRequestSchema, { subscribeSessionId: sessionId }));
    const sent = [opening.messageId];
    for (let i = 0; i < 20; i++) {
      const message = chat(sessionId, "agent://b");
      sent.push(message.messageId);
      expect((await sendAs(b, message)).ok).toBe(true);
    }
    const commitment = envelope({
      messageType: "Commitment",
      sessionId,
      sender: "agent://a",
      payload: toBinary(
        CommitmentPayloadSchema,
        create(CommitmentPayloadSchema, {
          commitmentId: "c1",
          action: "done",
          authorityScope: "chat",
          reason: "finished",
          modeVersion: "1.0.0",
          policyVersion: "policy.default",
          configurationVersion: "",
        }),
      ),
    });
    sent.push(commitment.messageId);
    const committed = await sendAs(b, commitment);
    expect(committed.error?.message ?? "").toBe("");
    for (let i = 0; i < 3; i++) {
      const signal = envelope({
        messageType: "Signal",
        mode: "",
        sender: "agent://c",
        payload: toBinary(
          SignalPayloadSchema,
          create(SignalPayloadSchema, { signalType: `beat-${i}` }),
        ),
      });
      expect((await sendAs(b, signal)).ok).toBe(true);
    }
    const received = await take(stream.outputs, sent.length);
    expect(received.map((o) => (o.kind === "envelope" ? o.envelope.messageId : o.kind))).toEqual(
      sent,
    );
    const events = await lifecycleEvents;
    expect(events.map((e) => [e.eventType, e.session?.sessionId])).toEqual([
      [EventType.CREATED, sessionId],
      [EventType.RESOLVED, sessionId],
    ]);
    const beats = await signalEvents;
    expect(beats.map((e) => e.messageId)).toHaveLength(3);
    expect(beats.map((e) => e.sender)).toEqual(["agent://c", "agent://c", "agent://c"]);
    abort.abort();
  });

  it("expires a session exactly once when every instance sees the deadline pass", async () => {
    const instances = await cluster(3);
    const sessionId = sid("expiring");
    expect(
      (await sendAs(instances[0] as MacpRuntime, start(sessionId, "agent://a", 1000))).ok,
    ).toBe(true);
    for (const runtime of instances) {
      expect((await runtime.getSession(sessionId, observer)).isOk()).toBe(true);
    }
    const abort = new AbortController();
    const watches = instances.map((runtime) =>
      runtime.watchSessions(observer, abort.signal)._unsafeUnwrap(),
    );
    now += 5_000;
    await Promise.all(instances.map((runtime) => runtime.processDueWork()));
    for (const runtime of instances) {
      const metadata = (await runtime.getSession(sessionId, observer))._unsafeUnwrap();
      expect(metadata.state).toBe(SessionState.EXPIRED);
    }
    const store = stores.get(instances[0] as MacpRuntime) as PostgresStore;
    const records = (await store.read(sessionId)) ?? [];
    expect(records.filter((r) => r.kind === "internal" && r.type === "TtlExpired")).toHaveLength(1);
    // Each instance tells its own watchers once: a late copy would follow the marker session.
    const marker = sid("after-expiry");
    expect((await sendAs(instances[1] as MacpRuntime, start(marker))).ok).toBe(true);
    for (const watch of watches) {
      const seen: [EventType, string][] = [];
      for await (const event of watch) {
        seen.push([event.eventType, event.session?.sessionId ?? ""]);
        if (event.session?.sessionId === marker) break;
      }
      expect(seen.filter(([, id]) => id === sessionId).map(([type]) => type)).toContain(
        EventType.EXPIRED,
      );
      expect(
        seen.filter(([type, id]) => id === sessionId && type === EventType.EXPIRED),
      ).toHaveLength(1);
    }
    abort.abort();
  });
});

describe("PostgreSQL unreachable", () => {
  it("answers Sends with a retryable INTERNAL_ERROR and resumes when the database returns", async () => {
    const proxy = await startProxy(db.port);
    const database = "unreachable";
    await db.createDatabase(database);
    const runtime = await instance(`postgres://macp@127.0.0.1:${proxy.port}/${database}`);
    await registerChat(runtime);
    expect((await sendAs(runtime, start(sid("outage")))).ok).toBe(true);
    const before = chat(sid("outage"), "agent://b");
    expect((await sendAs(runtime, before)).ok).toBe(true);

    proxy.cut();
    const during = chat(sid("outage"), "agent://c");
    const refused = await sendAs(runtime, during);
    expect(refused.ok).toBe(false);
    expect(refused.error?.code).toBe("INTERNAL_ERROR");

    proxy.restore();
    const retried = await sendAs(runtime, during);
    expect(retried.ok && !retried.duplicate).toBe(true);
    expect((await runtime.readHistory(sid("outage"))).map((e) => e.messageId)).toEqual([
      expect.any(String),
      before.messageId,
      during.messageId,
    ]);
    await runtime.close();
    opened.splice(opened.indexOf(runtime), 1);
    await proxy.close();
  });
});

describe("a registry change while PostgreSQL is unreachable", () => {
  it("answers INTERNAL_ERROR, leaves the registry unchanged, and a restart loads only acknowledged changes", async () => {
    const proxy = await startProxy(db.port);
    const database = "registry-outage";
    const direct = await db.createDatabase(database);
    const runtime = await instance(`postgres://macp@127.0.0.1:${proxy.port}/${database}`);
    const admin = createDevIdentity("agent://admin");
    expect(
      runtime.registerPolicy(policy("policy.test.kept", "kept"), admin)._unsafeUnwrap().ok,
    ).toBe(true);
    expect((await committed(runtime)).isOk()).toBe(true);

    proxy.cut();
    expect(
      runtime.registerPolicy(policy("policy.test.lost", "lost"), admin)._unsafeUnwrap().ok,
    ).toBe(true);
    expect((await committed(runtime))._unsafeUnwrapErr().code).toBe("INTERNAL_ERROR");
    expect(runtime.unregisterPolicy("policy.test.kept", admin)._unsafeUnwrap().ok).toBe(true);
    expect((await committed(runtime))._unsafeUnwrapErr().code).toBe("INTERNAL_ERROR");
    expect(policyDescription(runtime, "policy.test.lost")).toBeUndefined();
    expect(policyDescription(runtime, "policy.test.kept")).toBe("kept");

    proxy.restore();
    expect(
      runtime.registerPolicy(policy("policy.test.later", "later"), admin)._unsafeUnwrap().ok,
    ).toBe(true);
    expect((await committed(runtime)).isOk()).toBe(true);
    expect(policyDescription(runtime, "policy.test.later")).toBe("later");
    const restarted = await instance(direct);
    expect(policyDescription(restarted, "policy.test.kept")).toBe("kept");
    expect(policyDescription(restarted, "policy.test.lost")).toBeUndefined();
    expect(policyDescription(restarted, "policy.test.later")).toBe("later");
    await runtime.close();
    opened.splice(opened.indexOf(runtime), 1);
    await proxy.close();
  });
});

/** A TCP relay to PostgreSQL that can drop every connection and refuse new ones. */
async function startProxy(targetPort: number): Promise<{
  port: number;
  cut(): void;
  restore(): void;
  close(): Promise<void>;
}> {
  let down = false;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    if (down) {
      client.destroy();
      return;
    }
    const upstream = connect(targetPort, "127.0.0.1");
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
      socket.on("error", () => {});
    }
    client.pipe(upstream).pipe(client);
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    port,
    cut() {
      down = true;
      for (const socket of sockets) socket.destroy();
    },
    restore() {
      down = false;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
