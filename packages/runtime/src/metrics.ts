// Prometheus metrics for the runtime server. The runtime is wrapped rather
// than edited: every RPC reaches the core through the wrapper, which tallies
// outcomes in plain counters on the hot path and hands them to prom-client
// only when a scrape asks (prom-client hashes label sets on every inc()).

import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Caller, MacpRuntime, RecoveryReport, SessionStream } from "@macp/core";
import { createIdentity } from "@macp/core";
import { type Envelope, SessionState } from "@macp/proto";
import { ok } from "neverthrow";
import { Counter, collectDefaultMetrics, Gauge, Registry } from "prom-client";
import { formatAddress, type MetricsAddress } from "./config.js";
import type { Logger } from "./logger.js";

/** Without a shared store, registry changes are durable when they return. */
const REGISTRY_LOCAL = ok(undefined);

/** Distinct `mode` label values before further modes are pooled (as in the reference). */
const MAX_MODE_LABELS = 1000;
const OVERFLOW_MODE = "_overflow";

/** Sums per label combination; `key` is the label values joined with NUL. */
class Tally {
  private readonly counts = new Map<string, number>();

  add(key: string, amount = 1): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + amount);
  }

  entries(): IterableIterator<[string, number]> {
    return this.counts.entries();
  }
}

const SEP = "\u0000";

/** What Send and the session-control calls return (an Ack, or a refusal). */
type AckResult = Awaited<ReturnType<MacpRuntime["send"]>>;

export interface RuntimeMetricsOptions {
  /** Also collect prom-client's default process metrics (CPU, memory, event loop). Default true. */
  readonly processMetrics?: boolean;
}

/** The runtime's metrics, and the wrapper that records them. */
export interface RuntimeMetrics {
  readonly registry: Registry;
  /** Returns a runtime that behaves exactly like `runtime` and records what passes through it. */
  instrument(runtime: MacpRuntime): MacpRuntime;
  /** Wraps an authenticate hook to count refused credentials. */
  instrumentAuthenticate<H>(
    authenticate: (headers: H) => Caller | Promise<Caller>,
  ): (headers: H) => Caller | Promise<Caller>;
  /** Records what start-up recovery found. */
  recordRecovery(report: RecoveryReport): void;
  /** The Prometheus text exposition of everything. */
  render(): Promise<string>;
}

export function createRuntimeMetrics(options: RuntimeMetricsOptions = {}): RuntimeMetrics {
  const registry = new Registry();
  if (options.processMetrics ?? true) collectDefaultMetrics({ register: registry });

  const sends = new Tally(); // outcome, code
  const started = new Tally(); // mode
  const accepted = new Tally(); // mode
  const commitments = new Tally(); // mode
  const resolved = new Tally(); // mode
  const control = new Tally(); // operation, outcome, code
  const streamsOpened = new Tally(); // rpc
  const streamsOpen = new Map<string, number>(); // rpc
  const frames = new Tally(); // kind
  let authFailures = 0;
  const modes = new Set<string>();
  let inspect: MacpRuntime | undefined;

  const modeLabel = (mode: string): string => {
    if (modes.has(mode)) return mode;
    if (modes.size >= MAX_MODE_LABELS) return OVERFLOW_MODE;
    modes.add(mode);
    return mode;
  };

  // Each counter copies its tally at scrape time; reset() then inc() keeps
  // prom-client's own bookkeeping out of the request path.
  const fromTally = (
    name: string,
    help: string,
    labelNames: readonly string[],
    tally: Tally,
  ): void => {
    new Counter({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        for (const [key, value] of tally.entries()) {
          const values = key.split(SEP);
          const labels: Record<string, string> = {};
          labelNames.forEach((label, index) => {
            labels[label] = values[index] ?? "";
          });
          this.inc(labels, value);
        }
      },
    });
  };

  fromTally(
    "macp_sends_total",
    "Send RPCs by outcome (accepted, duplicate, rejected) and error code",
    ["outcome", "code"],
    sends,
  );
  fromTally("macp_sessions_started_total", "SessionStarts accepted", ["mode"], started);
  fromTally(
    "macp_messages_accepted_total",
    "Session messages accepted, SessionStart and Signal/Progress excluded",
    ["mode"],
    accepted,
  );
  fromTally("macp_commitments_accepted_total", "Commitments accepted", ["mode"], commitments);
  fromTally(
    "macp_sessions_resolved_total",
    "Sessions resolved by an accepted message",
    ["mode"],
    resolved,
  );
  fromTally(
    "macp_session_control_total",
    "CancelSession, SuspendSession and ResumeSession calls by outcome (ok, rejected, refused)",
    ["operation", "outcome", "code"],
    control,
  );
  fromTally("macp_streams_opened_total", "Server streams opened, by RPC", ["rpc"], streamsOpened);
  fromTally(
    "macp_stream_frames_total",
    "StreamSession request frames, by kind (envelope, subscribe)",
    ["kind"],
    frames,
  );
  new Counter({
    name: "macp_auth_failures_total",
    help: "Calls whose credentials were missing or refused",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(authFailures);
    },
  });
  new Gauge({
    name: "macp_streams_open",
    help: "Server streams open now, by RPC",
    labelNames: ["rpc"],
    registers: [registry],
    collect() {
      this.reset();
      for (const [rpc, open] of streamsOpen) this.set({ rpc }, open);
    },
  });
  const metricsCaller = createIdentity({ sender: "_metrics", isObserver: true });
  new Gauge({
    name: "macp_sessions",
    help: "Sessions held in memory, by state",
    labelNames: ["state"],
    registers: [registry],
    collect() {
      this.reset();
      if (inspect === undefined) return;
      const counts = new Map<string, number>();
      for (const state of ["open", "resolved", "expired", "suspended", "cancelled"]) {
        counts.set(state, 0);
      }
      let pageToken = "";
      do {
        const page = inspect.listSessions({ pageSize: 1000, pageToken }, metricsCaller);
        if (page.isErr()) return;
        for (const session of page.value.sessions) {
          const state = (SessionState[session.state] ?? "unspecified").toLowerCase();
          counts.set(state, (counts.get(state) ?? 0) + 1);
        }
        pageToken = page.value.nextPageToken;
      } while (pageToken !== "");
      for (const [state, count] of counts) this.set({ state }, count);
    },
  });
  const recovered = new Gauge({
    name: "macp_recovered_sessions",
    help: "Sessions rebuilt from the store at start-up",
    registers: [registry],
  });
  const quarantined = new Gauge({
    name: "macp_quarantined_sessions",
    help: "Stored sessions that could not be recovered at start-up",
    registers: [registry],
  });

  const recordSend = (envelope: Envelope | undefined, result: AckResult): void => {
    if (result.isErr()) {
      sends.add(`rejected${SEP}${result.error.code}`);
      return;
    }
    const ack = result.value;
    if (!ack.ok) {
      sends.add(`rejected${SEP}${ack.error?.code ?? ""}`);
      return;
    }
    if (ack.duplicate) {
      sends.add(`duplicate${SEP}`);
      return;
    }
    sends.add(`accepted${SEP}`);
    if (envelope === undefined || envelope.mode === "") return; // ambient Signal/Progress
    const mode = modeLabel(envelope.mode);
    if (envelope.messageType === "SessionStart") {
      started.add(mode);
      return;
    }
    accepted.add(mode);
    if (envelope.messageType === "Commitment") commitments.add(mode);
    if (ack.sessionState === SessionState.RESOLVED) resolved.add(mode);
  };

  const recordControl = (operation: string, result: AckResult): void => {
    if (result.isErr()) control.add(`${operation}${SEP}refused${SEP}${result.error.code}`);
    else if (result.value.ok) control.add(`${operation}${SEP}ok${SEP}`);
    else control.add(`${operation}${SEP}rejected${SEP}${result.value.error?.code ?? ""}`);
  };

  const track = <T>(
    rpc: string,
    source: AsyncIterable<T>,
    signal?: AbortSignal,
  ): AsyncIterable<T> => {
    streamsOpened.add(rpc);
    streamsOpen.set(rpc, (streamsOpen.get(rpc) ?? 0) + 1);
    let ended = false;
    const end = (): void => {
      if (ended) return;
      ended = true;
      streamsOpen.set(rpc, (streamsOpen.get(rpc) ?? 1) - 1);
      signal?.removeEventListener("abort", end);
    };
    // A consumer may drop the stream without finishing it; the call's signal
    // still tells us it is over.
    if (signal?.aborted === true) end();
    else signal?.addEventListener("abort", end, { once: true });
    return {
      [Symbol.asyncIterator]() {
        const iterator = source[Symbol.asyncIterator]();
        return {
          async next() {
            try {
              const step = await iterator.next();
              if (step.done === true) end();
              return step;
            } catch (error) {
              end();
              throw error;
            }
          },
          async return(value?: unknown) {
            end();
            if (iterator.return !== undefined) return iterator.return(value);
            return { done: true, value: undefined };
          },
        };
      },
    };
  };

  const trackSessionStream = (stream: SessionStream, signal?: AbortSignal): SessionStream => ({
    push(frame) {
      frames.add(frame.envelope !== undefined ? "envelope" : "subscribe");
      return stream.push(frame);
    },
    end: () => stream.end(),
    outputs: track("StreamSession", stream.outputs, signal),
  });

  return {
    registry,
    render: () => registry.metrics(),
    recordRecovery(report) {
      recovered.set(report.sessions);
      quarantined.set(report.quarantined.length);
    },
    instrumentAuthenticate(authenticate) {
      const count = (caller: Caller): Caller => {
        if ("unauthenticated" in caller) authFailures++;
        return caller;
      };
      // Keep synchronous answers synchronous: a promise hop per call is measurable.
      return (headers) => {
        const caller = authenticate(headers);
        return caller instanceof Promise ? caller.then(count) : count(caller);
      };
    },
    instrument(runtime) {
      inspect = runtime;
      return {
        initialize: (request) => runtime.initialize(request),
        async send(envelope, caller) {
          const result = await runtime.send(envelope, caller);
          recordSend(envelope, result);
          return result;
        },
        sendNow(envelope, caller) {
          const result = runtime.sendNow(envelope, caller);
          if (result instanceof Promise) {
            return result.then((settled) => {
              recordSend(envelope, settled);
              return settled;
            });
          }
          recordSend(envelope, result);
          return result;
        },
        openSessionStream: (caller, signal) =>
          runtime
            .openSessionStream(caller, signal)
            .map((stream) => trackSessionStream(stream, signal)),
        getSession: (sessionId, caller) => runtime.getSession(sessionId, caller),
        listSessions: (listOptions, caller) => runtime.listSessions(listOptions, caller),
        async cancelSession(sessionId, reason, caller) {
          const result = await runtime.cancelSession(sessionId, reason, caller);
          recordControl("cancel", result);
          return result;
        },
        async suspendSession(sessionId, reason, caller) {
          const result = await runtime.suspendSession(sessionId, reason, caller);
          recordControl("suspend", result);
          return result;
        },
        async resumeSession(sessionId, reason, caller) {
          const result = await runtime.resumeSession(sessionId, reason, caller);
          recordControl("resume", result);
          return result;
        },
        getManifest: (agentId) => runtime.getManifest(agentId),
        listModes: () => runtime.listModes(),
        listExtModes: () => runtime.listExtModes(),
        listRoots: () => runtime.listRoots(),
        registerExtMode: (descriptor, caller) => runtime.registerExtMode(descriptor, caller),
        unregisterExtMode: (mode, caller) => runtime.unregisterExtMode(mode, caller),
        promoteMode: (mode, promotedName, caller) =>
          runtime.promoteMode(mode, promotedName, caller),
        registerPolicy: (descriptor, caller) => runtime.registerPolicy(descriptor, caller),
        unregisterPolicy: (policyId, caller) => runtime.unregisterPolicy(policyId, caller),
        registryCommitted: () => runtime.registryCommitted?.() ?? Promise.resolve(REGISTRY_LOCAL),
        getPolicy: (policyId, caller) => runtime.getPolicy(policyId, caller),
        listPolicies: (mode, caller) => runtime.listPolicies(mode, caller),
        watchSessions: (caller, signal) =>
          runtime
            .watchSessions(caller, signal)
            .map((events) => track("WatchSessions", events, signal)),
        watchSignals: (caller, signal) =>
          runtime
            .watchSignals(caller, signal)
            .map((events) => track("WatchSignals", events, signal)),
        watchModeRegistry: (signal) =>
          track("WatchModeRegistry", runtime.watchModeRegistry(signal), signal),
        watchRoots: (signal) => track("WatchRoots", runtime.watchRoots(signal), signal),
        watchPolicies: (signal) => track("WatchPolicies", runtime.watchPolicies(signal), signal),
        inspectSession: (sessionId) => runtime.inspectSession(sessionId),
        readHistory: (sessionId) => runtime.readHistory(sessionId),
        nextDeadline: () => runtime.nextDeadline(),
        processDueWork: () => runtime.processDueWork(),
        recover: () => runtime.recover(),
        close: () => runtime.close(),
      };
    },
  };
}

/** A running metrics endpoint. */
export interface MetricsServer {
  readonly address: MetricsAddress;
  close(): Promise<void>;
}

/**
 * Serves the Prometheus text format over plain HTTP/1.1 on `address`, for any
 * method and path, closing each connection after the response. A failure to
 * bind is logged and costs only the metrics, as in the reference: it resolves
 * `undefined` and the runtime keeps serving.
 */
export async function startMetricsServer(
  metrics: Pick<RuntimeMetrics, "registry" | "render">,
  address: MetricsAddress,
  logger: Logger,
): Promise<MetricsServer | undefined> {
  const server: Server = createServer((request, response) => {
    // The body is not needed; drain it so the socket can close cleanly.
    request.resume();
    metrics.render().then(
      (body) => {
        response.writeHead(200, {
          "content-type": metrics.registry.contentType,
          "content-length": Buffer.byteLength(body),
          connection: "close",
        });
        response.end(body);
      },
      (error: unknown) => {
        logger.error({ err: error }, "collecting metrics failed");
        response.writeHead(500, { connection: "close" });
        response.end();
      },
    );
  });
  const listening = await new Promise<boolean>((resolve) => {
    server.once("error", (error) => {
      logger.error(
        { err: error, address: formatAddress(address) },
        "metrics endpoint could not bind; continuing without metrics",
      );
      resolve(false);
    });
    server.listen(address.port, address.host, () => resolve(true));
  });
  if (!listening) return undefined;
  server.on("error", (error) => logger.error({ err: error }, "metrics endpoint error"));
  const bound = server.address() as AddressInfo;
  return {
    address: { host: address.host, port: bound.port },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
