import type {
  handleUnaryCall,
  Metadata,
  Server,
  ServerDuplexStream,
  ServerUnaryCall,
  ServerWritableStream,
  sendUnaryData,
  UntypedServiceImplementation,
} from "@grpc/grpc-js";
import { status } from "@grpc/grpc-js";
import {
  type Caller,
  type Clock,
  type MacpError,
  type MacpRuntime,
  MacpStreamError,
} from "@macp/core";
import {
  controlRefusal,
  createHealthState,
  type HealthState,
  linkSignals,
  pipeSessionStream,
  type Refusal,
  sendRefusal,
  streamTerminationOf,
  watchHealth,
} from "@macp/core/wire";
import {
  type Ack,
  type CancelSessionRequest,
  type GetManifestRequest,
  type GetPolicyRequest,
  type GetSessionRequest,
  health,
  type InitializeRequest,
  type ListPoliciesRequest,
  type ListSessionsRequest,
  MACPRuntimeService,
  type PromoteModeRequest,
  type RegisterExtModeRequest,
  type RegisterPolicyRequest,
  type SendRequest,
  type StreamSessionRequest,
  type UnregisterExtModeRequest,
  type UnregisterPolicyRequest,
} from "@macp/proto";
import type { Result } from "neverthrow";
import { grpcServiceDefinition } from "./grpc-service-definition.js";
import { GrpcStatusError, toServiceError } from "./grpc-status-error.js";
import { headersOf } from "./metadata-headers.js";

export interface MacpGrpcServicesOptions {
  /**
   * Resolves the caller from the request metadata, presented as Fetch
   * `Headers` (`authorization: Bearer …`, `x-macp-token`; see @macp/auth): the
   * same hook as @macp/connect's routes take. Return `{ unauthenticated: reason }`
   * for missing or bad credentials rather than throwing: the runtime answers
   * UNAUTHENTICATED itself, where the protocol prescribes. A thrown
   * {@link GrpcStatusError}, or any error with a numeric gRPC `code` (a
   * ConnectError), ends the call with its status; any other exception with
   * INTERNAL. Not called for Initialize, ListModes, ListExtModes,
   * ListRoots, GetManifest, WatchModeRegistry, WatchRoots and WatchPolicies.
   */
  authenticate(headers: Headers): Caller | Promise<Caller>;
  /** The time written into NACKs (`accepted_at_unix_ms`). Default: the wall clock. */
  readonly clock?: Clock;
  /**
   * The state `grpc.health.v1.Health` reports from. Default: a new state that
   * always reports SERVING. `false` leaves the health service off.
   */
  readonly health?: HealthState | false;
  /**
   * When aborted, every open server stream (StreamSession, the watches,
   * health Watch) ends with UNAVAILABLE; unary calls in flight finish.
   * Default: none.
   */
  readonly shutdownSignal?: AbortSignal;
  /**
   * Told when each call starts and ends (a unary call when its answer is
   * handed to grpc-js, a stream when it has ended), so a server can wait for
   * calls in flight when it shuts down. Default: none.
   */
  readonly calls?: CallTracker;
}

/** Counts calls in flight. */
export interface CallTracker {
  started(): void;
  ended(): void;
}

const untracked: CallTracker = { started() {}, ended() {} };

const wallClock: Clock = { now: () => Date.now() };

type Answer<R> = R | Promise<R>;

/** The value of a runtime result, or the status the RPC ends with. */
function orStatus<T>(result: Result<T, MacpError>): T {
  if (result.isErr()) throw GrpcStatusError.of(result.error);
  return result.value;
}

/** With a shared store, a registry change is answered only once every instance can see it. */
function afterRegistryCommit<T>(runtime: MacpRuntime, reply: T): Answer<T> {
  const committed = runtime.registryCommitted?.();
  if (committed === undefined) return reply;
  return committed.then((result) => {
    orStatus(result);
    return reply;
  });
}

/** The Ack of an RPC that may refuse with a NACK or a status. */
function ackOf(refusal: Refusal): Ack {
  if (refusal.kind === "status") throw GrpcStatusError.fromWire(refusal.status);
  return refusal.ack;
}

/**
 * A unary handler. `run` may answer synchronously, which keeps a promise hop
 * (measurable server CPU per call) off the hot path.
 */
function unary<Q>(
  calls: CallTracker,
  run: (request: Q, call: ServerUnaryCall<Q, unknown>) => Answer<unknown>,
): handleUnaryCall<Q, unknown> {
  return (call, callback) => {
    calls.started();
    let answer: Answer<unknown>;
    try {
      answer = run(call.request, call);
    } catch (error) {
      calls.ended();
      callback(toServiceError(error));
      return;
    }
    if (answer instanceof Promise) {
      answer.then(
        (value) => {
          calls.ended();
          callback(null, value);
        },
        (error: unknown) => {
          calls.ended();
          callback(toServiceError(error));
        },
      );
    } else {
      calls.ended();
      callback(null, answer);
    }
  };
}

/** The writing half of a server-streaming or bidi call. */
interface ResponseStream {
  write(message: unknown, callback: () => void): boolean;
  end(): void;
  emit(event: "error", error: unknown): boolean;
  once(event: "cancelled", listener: () => void): unknown;
  off(event: "cancelled", listener: () => void): unknown;
}

/**
 * Writes one message and resolves once grpc-js has handed it to HTTP/2 (or
 * `signal` fires: a cancelled call never calls back). Waiting for each write,
 * not just for "drain", keeps the runtime's bounded per-subscriber queue the
 * only buffer: grpc-js would otherwise take 16 messages per stream before
 * pushing back, and a subscriber that stops reading would never lag.
 */
function written(call: ResponseStream, message: unknown, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      signal.removeEventListener("abort", done);
      resolve();
    };
    signal.addEventListener("abort", done, { once: true });
    call.write(message, done);
  });
}

/**
 * The MACPRuntimeService (all 24 RPCs) and grpc.health.v1.Health on a grpc-js
 * server, over the same runtime and the same wire table as @macp/connect's
 * routes: the handlers authenticate, call the runtime, and put its answer on
 * the wire; every error goes through @macp/core's `wireRuleOf`.
 */
export function addMacpGrpcServices(
  server: Server,
  runtime: MacpRuntime,
  options: MacpGrpcServicesOptions,
): void {
  const clock = options.clock ?? wallClock;
  const shutdownSignal = options.shutdownSignal;
  const healthState = options.health === undefined ? createHealthState() : options.health;
  const calls = options.calls ?? untracked;
  const unaryCall = <Q>(run: (request: Q, call: ServerUnaryCall<Q, unknown>) => Answer<unknown>) =>
    unary(calls, run);

  const shuttingDown = (): GrpcStatusError =>
    new GrpcStatusError(status.UNAVAILABLE, "the server is shutting down");

  /** Runs `run` with the caller, without a promise hop when authentication answers at once. */
  const withCaller = <R>(
    call: { readonly metadata: Metadata },
    run: (caller: Caller) => Answer<R>,
  ): Answer<R> => {
    const caller = options.authenticate(headersOf(call.metadata));
    return caller instanceof Promise ? caller.then(run) : run(caller);
  };

  /** An authenticated unary RPC. */
  const authed = <Q>(
    run: (request: Q, caller: Caller) => Answer<unknown>,
  ): handleUnaryCall<Q, unknown> =>
    unaryCall<Q>((request, call) => withCaller(call, (caller) => run(request, caller)));

  /**
   * Writes a runtime stream to a server-streaming call until it ends, the
   * client cancels, or the server shuts down (then UNAVAILABLE, so clients
   * reconnect). `open` gets the call's signal joined with the shutdown.
   */
  async function serve<T>(
    call: ResponseStream,
    open: (signal: AbortSignal) => Answer<AsyncIterable<T>>,
    map: (item: T) => unknown,
    extra?: AbortController,
  ): Promise<void> {
    calls.started();
    const cancelled = new AbortController();
    const onCancel = (): void => cancelled.abort();
    call.once("cancelled", onCancel);
    const linked = linkSignals(cancelled.signal, shutdownSignal, extra?.signal);
    try {
      for await (const item of await open(linked.signal)) {
        await written(call, map(item), linked.signal);
      }
      if (shutdownSignal?.aborted === true) throw shuttingDown();
      if (!cancelled.signal.aborted) call.end();
    } catch (error) {
      if (cancelled.signal.aborted) return;
      call.emit(
        "error",
        toServiceError(
          error instanceof MacpStreamError
            ? GrpcStatusError.fromWire(streamTerminationOf(error.error))
            : error,
        ),
      );
    } finally {
      call.off("cancelled", onCancel);
      linked.dispose();
      calls.ended();
    }
  }

  /** A server-streaming RPC anyone may call. */
  const stream =
    <T>(open: (signal: AbortSignal) => AsyncIterable<T>, map: (item: T) => unknown) =>
    (call: ServerWritableStream<unknown, unknown>): void => {
      void serve(call, open, map);
    };

  /** A server-streaming RPC for an authenticated caller. */
  const authedStream =
    <T>(
      open: (caller: Caller, signal: AbortSignal) => Result<AsyncIterable<T>, MacpError>,
      map: (item: T) => unknown,
    ) =>
    (call: ServerWritableStream<unknown, unknown>): void => {
      void serve(
        call,
        (signal) => withCaller(call, (caller) => orStatus(open(caller, signal))),
        map,
      );
    };

  const implementation: UntypedServiceImplementation = {
    initialize: unaryCall<InitializeRequest>((request) => orStatus(runtime.initialize(request))),

    // Send is the hot path: written out rather than composed from the helpers,
    // so a call whose authenticator and runtime answer at once allocates no
    // promise and no closure beyond the two below.
    send(call: ServerUnaryCall<SendRequest, unknown>, callback: sendUnaryData<unknown>): void {
      calls.started();
      const envelope = call.request.envelope;
      const fail = (error: unknown): void => {
        calls.ended();
        callback(toServiceError(error));
      };
      const reply = (result: Result<Ack, MacpError>): void => {
        if (result.isOk()) {
          calls.ended();
          callback(null, { ack: result.value });
          return;
        }
        const context = {
          sessionId: envelope?.sessionId ?? "",
          messageId: envelope?.messageId ?? "",
          now: clock.now(),
        };
        const refusal = sendRefusal(result.error, context);
        if (refusal.kind === "status") {
          fail(GrpcStatusError.fromWire(refusal.status));
          return;
        }
        calls.ended();
        callback(null, { ack: refusal.ack });
      };
      const sendAs = (caller: Caller): void => {
        const result = runtime.send(envelope, caller);
        if (result instanceof Promise) result.then(reply, fail);
        else reply(result);
      };
      try {
        const caller = options.authenticate(headersOf(call.metadata));
        if (caller instanceof Promise) caller.then(sendAs, fail);
        else sendAs(caller);
      } catch (error) {
        fail(error);
      }
    },

    streamSession(call: ServerDuplexStream<StreamSessionRequest, unknown>): void {
      // Aborted by the pipe when either half ends, so the runtime stream ends with the call.
      const abort = new AbortController();
      // Not destroyed when the pipe stops reading: the call must still send its status.
      const requests = call.iterator({
        destroyOnReturn: false,
      }) as AsyncIterable<StreamSessionRequest>;
      void serve(
        call,
        (signal) =>
          withCaller(call, (caller) =>
            pipeSessionStream(orStatus(runtime.openSessionStream(caller, signal)), requests, abort),
          ),
        (response) => response,
        abort,
      );
    },

    getSession: authed<GetSessionRequest>(async (request, caller) => ({
      metadata: orStatus(await runtime.getSession(request.sessionId, caller)),
    })),

    cancelSession: authed<CancelSessionRequest>(async (request, caller) => {
      const result = await runtime.cancelSession(request.sessionId, request.reason, caller);
      if (result.isOk()) return { ack: result.value };
      return { ack: ackOf(controlRefusal(result.error, request.sessionId, clock.now())) };
    }),

    suspendSession: authed<CancelSessionRequest>(async (request, caller) => {
      const result = await runtime.suspendSession(request.sessionId, request.reason, caller);
      if (result.isOk()) return { ack: result.value };
      return { ack: ackOf(controlRefusal(result.error, request.sessionId, clock.now())) };
    }),

    resumeSession: authed<CancelSessionRequest>(async (request, caller) => {
      const result = await runtime.resumeSession(request.sessionId, request.reason, caller);
      if (result.isOk()) return { ack: result.value };
      return { ack: ackOf(controlRefusal(result.error, request.sessionId, clock.now())) };
    }),

    getManifest: unaryCall<GetManifestRequest>((request) => ({
      manifest: orStatus(runtime.getManifest(request.agentId)),
    })),

    listModes: unaryCall(() => ({ modes: runtime.listModes() })),

    watchModeRegistry: stream(
      (signal) => runtime.watchModeRegistry(signal),
      (change) => ({ change }),
    ),

    listRoots: unaryCall(() => ({ roots: runtime.listRoots() })),

    watchRoots: stream(
      (signal) => runtime.watchRoots(signal),
      (change) => ({ change }),
    ),

    listExtModes: unaryCall(() => ({ modes: runtime.listExtModes() })),

    registerExtMode: authed<RegisterExtModeRequest>((request, caller) => {
      const outcome = orStatus(runtime.registerExtMode(request.modeDescriptor, caller));
      return afterRegistryCommit(runtime, { ok: outcome.ok, error: outcome.error });
    }),

    unregisterExtMode: authed<UnregisterExtModeRequest>((request, caller) => {
      const outcome = orStatus(runtime.unregisterExtMode(request.mode, caller));
      return afterRegistryCommit(runtime, { ok: outcome.ok, error: outcome.error });
    }),

    promoteMode: authed<PromoteModeRequest>((request, caller) => {
      const outcome = orStatus(runtime.promoteMode(request.mode, request.promotedModeName, caller));
      return afterRegistryCommit(runtime, {
        ok: outcome.ok,
        error: outcome.error,
        mode: outcome.mode ?? "",
      });
    }),

    watchSignals: authedStream(
      (caller, signal) => runtime.watchSignals(caller, signal),
      (envelope) => ({ envelope }),
    ),

    listSessions: authed<ListSessionsRequest>((request, caller) =>
      orStatus(
        runtime.listSessions({ pageSize: request.pageSize, pageToken: request.pageToken }, caller),
      ),
    ),

    watchSessions: authedStream(
      (caller, signal) => runtime.watchSessions(caller, signal),
      (event) => ({ event }),
    ),

    registerPolicy: authed<RegisterPolicyRequest>((request, caller) => {
      const outcome = orStatus(runtime.registerPolicy(request.policyDescriptor, caller));
      return afterRegistryCommit(runtime, { ok: outcome.ok, error: outcome.error });
    }),

    unregisterPolicy: authed<UnregisterPolicyRequest>((request, caller) => {
      const outcome = orStatus(runtime.unregisterPolicy(request.policyId, caller));
      return afterRegistryCommit(runtime, { ok: outcome.ok, error: outcome.error });
    }),

    getPolicy: authed<GetPolicyRequest>((request, caller) => ({
      policyDescriptor: orStatus(runtime.getPolicy(request.policyId, caller)),
    })),

    listPolicies: authed<ListPoliciesRequest>((request, caller) =>
      orStatus(runtime.listPolicies(request.mode, caller)),
    ),

    watchPolicies: stream(
      (signal) => runtime.watchPolicies(signal),
      (snapshot) => snapshot,
    ),
  };
  server.addService(grpcServiceDefinition(MACPRuntimeService), implementation);

  if (healthState !== false) {
    server.addService(grpcServiceDefinition(health.Health), {
      check: unaryCall<health.HealthCheckRequest>((request) => {
        const serving = healthState.statusOf(request.service);
        // As the gRPC health service does: an unknown name is NOT_FOUND, not SERVICE_UNKNOWN.
        if (serving === undefined) {
          throw new GrpcStatusError(status.NOT_FOUND, `unknown service "${request.service}"`);
        }
        return { status: serving };
      }),
      watch(call: ServerWritableStream<health.HealthCheckRequest, unknown>): void {
        void serve(
          call,
          (signal) => watchHealth(healthState, call.request.service, signal),
          (serving) => ({ status: serving }),
        );
      },
    });
  }
}
