// Server lifecycle: graceful close, signal handling, and the timer driver.

import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { installShutdownHandlers, startMacpServer } from "@macp/connect/node";
import { createRuntime, type MacpRuntime } from "@macp/core";
import {
  health,
  MACPRuntimeService,
  SessionLifecycleEvent_EventType,
  type StreamSessionRequest,
  StreamSessionRequestSchema,
} from "@macp/proto";
import { describe, expect, it } from "vitest";
import {
  bearer,
  devAuthenticate,
  GRPC_SERVERS,
  newRuntime,
  newSessionId,
  pushable,
  Reader,
  sessionStart,
  sleep,
  withTimeout,
} from "./support.js";

const { SERVING, NOT_SERVING } = health.HealthCheckResponse_ServingStatus;

/** The real runtime, with Send held until `release` is called and close() recorded. */
function gatedRuntime(runtime: MacpRuntime): {
  runtime: MacpRuntime;
  release: () => void;
  closed: () => boolean;
  sendsHeld: () => number;
} {
  let held = 0;
  let release: () => void = () => {};
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  let closed = false;
  const gated = new Proxy(runtime, {
    get(target, property) {
      if (property === "send") {
        return async (...args: Parameters<MacpRuntime["send"]>) => {
          held++;
          await gate;
          return target.send(...args);
        };
      }
      if (property === "close") {
        return async () => {
          closed = true;
          await target.close();
        };
      }
      const value: unknown = Reflect.get(target, property);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { runtime: gated, release, closed: () => closed, sendsHeld: () => held };
}

/** Polls `condition` until it holds: the server has received what the client sent. */
async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(5);
  }
}

describe.each(GRPC_SERVERS)("close() of the server on %s", (_name, startServer) => {
  it("ends open streams with UNAVAILABLE, drains unary calls, then closes the runtime", async () => {
    // What the server has received, so close() starts only once every call is in.
    let watchesOpen = 0;
    let streamFrames = 0;
    const gated = gatedRuntime(
      createRuntime({
        clock: { now: () => Date.now() },
        observer: {
          streamOpened: (rpc) => {
            if (rpc === "WatchSessions") watchesOpen++;
          },
          streamFrame: () => {
            streamFrames++;
          },
        },
      }),
    );
    const server = await startServer({
      runtime: gated.runtime,
      authenticate: devAuthenticate,
      port: 0,
    });
    const transport = createGrpcTransport({ baseUrl: server.url });
    const client = createClient(MACPRuntimeService, transport);
    const healthClient = createClient(health.Health, transport);

    const healthWatch = new Reader(healthClient.watch({ service: "" }));
    expect((await healthWatch.next()).status).toBe(SERVING);

    const sessions = new Reader(client.watchSessions({}, { headers: bearer("observer") }));
    const registry = new Reader(client.watchModeRegistry({}));
    expect((await registry.next()).change?.registry).toBe("modes");
    const frames = pushable<StreamSessionRequest>();
    const stream = new Reader(client.streamSession(frames, { headers: bearer("coordinator") }));
    const sessionId = newSessionId();
    frames.push(
      create(StreamSessionRequestSchema, {
        envelope: sessionStart(sessionId, "coordinator", ["alice"]),
      }),
    );
    // Send is held at the gate: it is in flight when close() starts.
    const inFlight = client.send(
      { envelope: sessionStart(newSessionId(), "coordinator", ["alice"]) },
      { headers: bearer("coordinator") },
    );
    await until(
      () => gated.sendsHeld() === 1 && watchesOpen === 1 && streamFrames === 1,
      "the server has the Send, the watch and the stream's first frame",
    );

    const started = Date.now();
    const closing = server.close({ drainMs: 5000 });

    expect((await healthWatch.next()).status).toBe(NOT_SERVING);
    for (const reader of [healthWatch, stream, sessions, registry] as Reader<unknown>[]) {
      const end = await reader.drain();
      expect(ConnectError.from(end.error).code).toBe(Code.Unavailable);
    }
    expect(gated.closed()).toBe(false);

    gated.release();
    const response = await inFlight;
    expect(response.ack?.ok).toBe(true);
    await withTimeout(closing, 2000, "close()");
    expect(Date.now() - started).toBeLessThan(2000);
    expect(gated.closed()).toBe(true);

    const refused = await client
      .initialize({ supportedProtocolVersions: ["1.0"] })
      .catch((error: unknown) => ConnectError.from(error));
    expect(refused).toBeInstanceOf(ConnectError);
    expect(server.close()).toBe(closing);
  });

  it("cuts calls that outlast drainMs", async () => {
    const gated = gatedRuntime(newRuntime());
    const server = await startServer({
      runtime: gated.runtime,
      authenticate: devAuthenticate,
      port: 0,
    });
    const client = createClient(MACPRuntimeService, createGrpcTransport({ baseUrl: server.url }));
    const stuck = client
      .send(
        { envelope: sessionStart(newSessionId(), "coordinator", ["alice"]) },
        { headers: bearer("coordinator") },
      )
      .catch((error: unknown) => ConnectError.from(error));
    await sleep(50);
    const started = Date.now();
    await server.close({ drainMs: 200 });
    expect(Date.now() - started).toBeLessThan(1500);
    expect(await stuck).toBeInstanceOf(ConnectError);
    expect(gated.closed()).toBe(true);
    gated.release();
  });
});

describe("installShutdownHandlers", () => {
  it.each(GRPC_SERVERS)(
    "closes the server on %s gracefully and exits 0 on SIGTERM",
    async (_name, startServer) => {
      const runtime = newRuntime();
      const server = await startServer({ runtime, authenticate: devAuthenticate, port: 0 });
      const exits: number[] = [];
      const exited = new Promise<void>((resolve) => {
        const uninstall = installShutdownHandlers(server, {
          exit: (code) => {
            exits.push(code);
            uninstall();
            resolve();
          },
          logger: { info() {}, error() {} },
        });
      });
      process.emit("SIGTERM");
      await withTimeout(exited, 5000, "exit");
      expect(exits).toEqual([0]);
    },
  );

  it("exits 1 when closing outlasts the budget, and at once on a second signal", async () => {
    let finish: () => void = () => {};
    const slow = {
      close: () =>
        new Promise<void>((resolve) => {
          finish = resolve;
        }),
    };
    const exits: number[] = [];
    const uninstall = installShutdownHandlers(slow, {
      drainMs: 100,
      exit: (code) => exits.push(code),
      logger: { info() {}, error() {} },
    });
    try {
      process.emit("SIGINT");
      await sleep(200);
      expect(exits).toEqual([1]);
      process.emit("SIGTERM");
      expect(exits).toEqual([1, 1]);
    } finally {
      uninstall();
      finish();
    }
  });
});

describe("timer driver", () => {
  it("expires a session at its TTL with no traffic", async () => {
    const server = await startMacpServer({
      runtime: newRuntime(),
      authenticate: devAuthenticate,
      port: 0,
      timerDriver: { maxSleepMs: 50 },
    });
    try {
      const client = createClient(MACPRuntimeService, createGrpcTransport({ baseUrl: server.url }));
      const abort = new AbortController();
      const events = new Reader(
        client.watchSessions({}, { headers: bearer("observer"), signal: abort.signal }),
      );
      const sessionId = newSessionId();
      await client.send(
        { envelope: sessionStart(sessionId, "coordinator", ["alice"], 300) },
        { headers: bearer("coordinator") },
      );
      const seen: SessionLifecycleEvent_EventType[] = [];
      while (!seen.includes(SessionLifecycleEvent_EventType.EXPIRED)) {
        const { event } = await events.next(3000);
        if (event?.session?.sessionId === sessionId) seen.push(event.eventType);
      }
      expect(seen).toEqual([
        SessionLifecycleEvent_EventType.CREATED,
        SessionLifecycleEvent_EventType.EXPIRED,
      ]);
      abort.abort();
    } finally {
      await server.close({ drainMs: 1000 });
    }
  });
});
