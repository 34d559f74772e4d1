import { type Client, createClient, type Transport } from "@connectrpc/connect";
import {
  createDevIdentity,
  createMemoryStore,
  createRuntime,
  type Identity,
  type MacpRuntime,
  type RuntimeOptions,
  type SessionSnapshot,
  type SessionStore,
} from "@macp/core";
import { DEFAULT_EPOCH_MS, SimulatedClock } from "@macp/core/testing";
import { type Envelope, MACPRuntimeService } from "@macp/proto";
import { createInProcessTransport } from "./in-process-transport.js";
import { TranscriptRecorder } from "./transcript-recorder.js";

/** A Connect client of the MACP runtime service. */
export type MacpClient = Client<typeof MACPRuntimeService>;

export interface AgentTestHarnessOptions {
  /**
   * The agents that get a client. A string is a dev identity with that sender
   * (full privileges, as the server's dev mode gives); pass an {@link Identity}
   * (from `createIdentity`) for anything narrower, e.g. an observer. Agents
   * are named by their sender. Throws a TypeError on a duplicate sender.
   */
  readonly agents: readonly (string | Identity)[];
  /** Where simulated time starts (ms since the Unix epoch). Default 2026-01-01T00:00:00Z. */
  readonly startTimeMs?: number;
  /**
   * The runtime's store. Default: a new memory store. The harness does not
   * call `recover()`: with a store that already holds sessions, call
   * `harness.runtime.recover()` before the first RPC.
   */
  readonly store?: SessionStore;
  /** Everything else `createRuntime` takes (limits, policies, logger, …). Default none. */
  readonly runtime?: Omit<RuntimeOptions, "clock" | "store">;
  /** Record every request and response of every client in {@link AgentTestHarness.transcript}. Default false. */
  readonly transcript?: boolean;
  /** Encode messages as binary protobuf (true) or JSON (false) between client and routes. Default true. */
  readonly useBinaryFormat?: boolean;
}

/**
 * A runtime on a simulated clock with one Connect client per agent. Nothing
 * here waits on real time: time moves only in {@link AgentTestHarness.advance}.
 */
export interface AgentTestHarness {
  readonly runtime: MacpRuntime;
  readonly clock: SimulatedClock;
  readonly store: SessionStore;
  /** The agents' identities by name (sender). */
  readonly agents: ReadonlyMap<string, Identity>;
  /** The transcript, when the harness was created with `transcript: true`. */
  readonly transcript: TranscriptRecorder | undefined;
  /** The agent's Connect client (one per agent, reused). Throws for an unknown name. */
  client(name: string): MacpClient;
  /** The agent's in-process transport, for building other clients (e.g. with interceptors). */
  transport(name: string): Transport;
  /**
   * Moves the clock forward by `ms` and runs every piece of time-based work
   * (TTL expiry, suspension budgets, handoff implicit accepts, eviction) that
   * falls due on the way, in time order, each at its own instant. Resolves
   * once the runtime has finished it and the clock reads the target time.
   * Calls are serialised: a second call starts after the first finishes.
   */
  advance(ms: number): Promise<void>;
  /** {@link advance} to an absolute time (not in the past). */
  advanceTo(timeMs: number): Promise<void>;
  /** `runtime.inspectSession`: full state, undefined once evicted (1 h after it ended, by default). */
  session(sessionId: string): SessionSnapshot | undefined;
  /** `runtime.readHistory`: the accepted envelopes in sequence order. */
  history(sessionId: string): Promise<Envelope[]>;
  /** Closes the runtime, which ends every open stream. Idempotent. */
  close(): Promise<void>;
}

/**
 * Creates a runtime on a {@link SimulatedClock} and a memory store, and a
 * client per agent over {@link createInProcessTransport}: agents call the
 * same routes a server mounts, as their own identity, with no sockets.
 */
export function createAgentTestHarness(options: AgentTestHarnessOptions): AgentTestHarness {
  const clock = new SimulatedClock(options.startTimeMs ?? DEFAULT_EPOCH_MS);
  const store = options.store ?? createMemoryStore();
  const runtime = createRuntime({ ...options.runtime, clock, store });
  const transcript = options.transcript === true ? new TranscriptRecorder() : undefined;

  const agents = new Map<string, Identity>();
  for (const agent of options.agents) {
    const identity = typeof agent === "string" ? createDevIdentity(agent) : agent;
    if (agents.has(identity.sender)) {
      throw new TypeError(`agent "${identity.sender}" is listed twice`);
    }
    agents.set(identity.sender, identity);
  }

  const transports = new Map<string, Transport>();
  const clients = new Map<string, MacpClient>();
  const transportOf = (name: string): Transport => {
    const existing = transports.get(name);
    if (existing !== undefined) return existing;
    const identity = agents.get(name);
    if (identity === undefined) {
      const known = [...agents.keys()].join(", ");
      throw new Error(`no agent "${name}" in this harness (agents: ${known})`);
    }
    const transport = createInProcessTransport(runtime, {
      identity,
      // NACK times from the simulated clock, or transcripts would carry the wall clock.
      clock,
      interceptors: transcript === undefined ? [] : [transcript.interceptor(name)],
      useBinaryFormat: options.useBinaryFormat ?? true,
    });
    transports.set(name, transport);
    return transport;
  };

  const runDueWorkUntil = async (target: number): Promise<void> => {
    const from = clock.now();
    if (!Number.isSafeInteger(target) || target < from) {
      throw new RangeError(
        `cannot advance to ${target}: not a whole number of milliseconds at or after now (${from})`,
      );
    }
    for (;;) {
      const due = runtime.nextDeadline();
      if (due === undefined || due > target) break;
      // Each deadline is processed at its own instant, so what it produces
      // (expiry times, implicit-accept timestamps, lifecycle events) reads as
      // if a real timer had fired exactly then.
      if (due > clock.now()) clock.set(due);
      await runtime.processDueWork();
      const after = runtime.nextDeadline();
      if (after !== undefined && after <= clock.now()) {
        // Looping again would spin forever on the same instant.
        throw new Error(
          `the runtime still reports work due at ${after} after processing due work at ${clock.now()}; a due mode message was probably refused (see the runtime's logger)`,
        );
      }
    }
    clock.set(target);
    transcript?.record({ kind: "advance", from, to: target });
  };

  // Serialised so overlapping calls cannot interleave their clock moves.
  let queue: Promise<void> = Promise.resolve();
  const serialized = (work: () => Promise<void>): Promise<void> => {
    const run = queue.then(work);
    queue = run.catch(() => {});
    return run;
  };

  let closed: Promise<void> | undefined;

  return {
    runtime,
    clock,
    store,
    agents,
    transcript,
    client(name) {
      const existing = clients.get(name);
      if (existing !== undefined) return existing;
      const client = createClient(MACPRuntimeService, transportOf(name));
      clients.set(name, client);
      return client;
    },
    transport: transportOf,
    advance(ms) {
      if (!Number.isSafeInteger(ms) || ms < 0) {
        return Promise.reject(
          new RangeError(`advance takes a non-negative whole number of milliseconds, got ${ms}`),
        );
      }
      // Relative to the time when this call runs, so two queued advance(1000) calls add up.
      return serialized(() => runDueWorkUntil(clock.now() + ms));
    },
    advanceTo: (timeMs) => serialized(() => runDueWorkUntil(timeMs)),
    session: (sessionId) => runtime.inspectSession(sessionId),
    history: (sessionId) => runtime.readHistory(sessionId),
    close() {
      closed ??= runtime.close();
      return closed;
    },
  };
}
