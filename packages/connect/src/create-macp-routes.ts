import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ConnectRouter, HandlerContext } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Caller, Clock, MacpError, MacpRuntime } from "@macp/core";
import { MacpStreamError } from "@macp/core";
import {
  createHealthState,
  type HealthState,
  linkSignals,
  pipeSessionStream,
} from "@macp/core/wire";
import { type Ack, MACPRuntimeService, type SendResponseSchema } from "@macp/proto";
import type { Result } from "neverthrow";
import { registerHealthService } from "./health-state.js";
import {
  controlFailure,
  sendFailure,
  toStatusError,
  toStreamTerminationError,
} from "./wire-errors.js";

/**
 * The default request-size limit: the reference runtime's payload limit
 * (1 MiB) plus 64 KiB for the rest of the envelope (core.md §20).
 */
export const DEFAULT_MAX_RECEIVE_MESSAGE_BYTES = 1_048_576 + 65_536;

type SendResponseInit = MessageInitShape<typeof SendResponseSchema>;

export interface MacpRoutesOptions {
  /**
   * Resolves the caller from the request headers (`authorization: Bearer …`,
   * `x-macp-token`; see @macp/auth). Return `{ unauthenticated: reason }` for
   * missing or bad credentials rather than throwing: the runtime answers
   * UNAUTHENTICATED itself, at the point the protocol prescribes (on Send, as a
   * NACK after the envelope's shape checks). A thrown ConnectError ends the call
   * with its status; any other exception with INTERNAL. Not called for
   * Initialize, ListModes, ListExtModes, ListRoots, GetManifest,
   * WatchModeRegistry, WatchRoots and WatchPolicies, which clients call without
   * credentials.
   */
  authenticate(headers: Headers): Caller | Promise<Caller>;
  /**
   * The time written into NACKs (`accepted_at_unix_ms`). Default: the wall
   * clock. Pass the runtime's clock so acks agree with it.
   */
  readonly clock?: Clock;
  /**
   * Largest request message accepted, in bytes. A larger one is refused by the
   * transport (RESOURCE_EXHAUSTED) before any handler runs. Default
   * {@link DEFAULT_MAX_RECEIVE_MESSAGE_BYTES}; keep it at the runtime's
   * `maxPayloadBytes` + 64 KiB, or oversized payloads never reach the
   * PAYLOAD_TOO_LARGE check.
   */
  readonly maxReceiveMessageBytes?: number;
  /**
   * The state `grpc.health.v1.Health` reports from. Default: a new state that
   * always reports SERVING. `false` leaves the health service off the router
   * (when the host already serves its own).
   */
  readonly health?: HealthState | false;
  /**
   * When aborted, every open server stream (StreamSession, the watches,
   * health Watch) ends with UNAVAILABLE so clients reconnect elsewhere; unary
   * calls in flight are left to finish. Default: none (streams end only on
   * client cancel, deadline, or runtime close).
   */
  readonly shutdownSignal?: AbortSignal;
}

const wallClock: Clock = { now: () => Date.now() };

/**
 * The MACPRuntimeService (all 24 RPCs) and grpc.health.v1.Health as a Connect
 * route function, for any Connect adapter: connect-node, connect-fastify,
 * connect-express. All three protocols (gRPC, gRPC-Web, Connect) are served.
 * The routes hold no protocol rules: they authenticate, call the runtime, and
 * put its answer on the wire (see wire-errors.ts for the error table).
 */
export function createMacpRoutes(
  runtime: MacpRuntime,
  options: MacpRoutesOptions,
): (router: ConnectRouter) => void {
  const clock = options.clock ?? wallClock;
  const readMaxBytes = options.maxReceiveMessageBytes ?? DEFAULT_MAX_RECEIVE_MESSAGE_BYTES;
  const shutdownSignal = options.shutdownSignal;
  const healthState = options.health === undefined ? createHealthState() : options.health;

  const authenticate = async (context: HandlerContext): Promise<Caller> =>
    options.authenticate(context.requestHeader);

  // Runtime streams end quietly when their signal fires; if that was the
  // shutdown, tell the client so it reconnects instead of treating it as a normal end.
  const endOfStream = (): void => {
    if (shutdownSignal?.aborted === true) {
      throw new ConnectError("the server is shutting down", Code.Unavailable);
    }
  };

  /**
   * Serves a server stream: opens the runtime stream with the call's signal
   * (client cancel, deadline, call completion) joined with the shutdown, and
   * maps its items to response messages.
   */
  async function* serve<T, R>(
    context: HandlerContext,
    open: (signal: AbortSignal) => AsyncIterable<T>,
    map: (item: T) => R,
  ): AsyncGenerator<R, void, undefined> {
    const linked = linkSignals(context.signal, shutdownSignal);
    try {
      try {
        for await (const item of open(linked.signal)) yield map(item);
      } catch (error) {
        if (error instanceof MacpStreamError) throw toStatusError(error.error);
        throw error;
      }
      endOfStream();
    } finally {
      linked.dispose();
    }
  }

  return (router) => {
    router.service(
      MACPRuntimeService,
      {
        initialize(request) {
          const result = runtime.initialize(request);
          if (result.isErr()) throw toStatusError(result.error);
          return result.value;
        },

        // Send is the hot path: no async function and no await unless the
        // authenticator has to wait (a promise hop per call costs measurable server CPU).
        send(request, context) {
          const answer = (result: Result<Ack, MacpError>): SendResponseInit => {
            if (result.isOk()) return { ack: result.value };
            return {
              ack: sendFailure(result.error, {
                sessionId: request.envelope?.sessionId ?? "",
                messageId: request.envelope?.messageId ?? "",
                now: clock.now(),
              }),
            };
          };
          const accept = (caller: Caller) => runtime.send(request.envelope, caller).then(answer);
          const caller = options.authenticate(context.requestHeader);
          return caller instanceof Promise ? caller.then(accept) : accept(caller);
        },

        async *streamSession(requests, context) {
          const caller = await authenticate(context);
          // Aborted by the pipe when either half ends, so the runtime stream ends with the call.
          const abort = new AbortController();
          const linked = linkSignals(context.signal, shutdownSignal, abort.signal);
          try {
            const opened = runtime.openSessionStream(caller, linked.signal);
            if (opened.isErr()) throw toStatusError(opened.error);
            try {
              yield* pipeSessionStream(opened.value, requests, abort);
            } catch (error) {
              if (error instanceof MacpStreamError) throw toStreamTerminationError(error.error);
              throw ConnectError.from(error);
            }
            endOfStream();
          } finally {
            linked.dispose();
          }
        },

        async getSession(request, context) {
          const caller = await authenticate(context);
          const result = await runtime.getSession(request.sessionId, caller);
          if (result.isErr()) throw toStatusError(result.error);
          return { metadata: result.value };
        },

        async cancelSession(request, context) {
          const caller = await authenticate(context);
          const result = await runtime.cancelSession(request.sessionId, request.reason, caller);
          if (result.isOk()) return { ack: result.value };
          return { ack: controlFailure(result.error, request.sessionId, clock.now()) };
        },

        async suspendSession(request, context) {
          const caller = await authenticate(context);
          const result = await runtime.suspendSession(request.sessionId, request.reason, caller);
          if (result.isOk()) return { ack: result.value };
          return { ack: controlFailure(result.error, request.sessionId, clock.now()) };
        },

        async resumeSession(request, context) {
          const caller = await authenticate(context);
          const result = await runtime.resumeSession(request.sessionId, request.reason, caller);
          if (result.isOk()) return { ack: result.value };
          return { ack: controlFailure(result.error, request.sessionId, clock.now()) };
        },

        getManifest(request) {
          const result = runtime.getManifest(request.agentId);
          if (result.isErr()) throw toStatusError(result.error);
          return { manifest: result.value };
        },

        listModes() {
          return { modes: runtime.listModes() };
        },

        watchModeRegistry(_request, context) {
          return serve(
            context,
            (signal) => runtime.watchModeRegistry(signal),
            (change) => ({
              change,
            }),
          );
        },

        listRoots() {
          return { roots: runtime.listRoots() };
        },

        watchRoots(_request, context) {
          return serve(
            context,
            (signal) => runtime.watchRoots(signal),
            (change) => ({ change }),
          );
        },

        listExtModes() {
          return { modes: runtime.listExtModes() };
        },

        async registerExtMode(request, context) {
          const caller = await authenticate(context);
          const result = runtime.registerExtMode(request.modeDescriptor, caller);
          if (result.isErr()) throw toStatusError(result.error);
          await registryCommitted(runtime);
          return { ok: result.value.ok, error: result.value.error };
        },

        async unregisterExtMode(request, context) {
          const caller = await authenticate(context);
          const result = runtime.unregisterExtMode(request.mode, caller);
          if (result.isErr()) throw toStatusError(result.error);
          await registryCommitted(runtime);
          return { ok: result.value.ok, error: result.value.error };
        },

        async promoteMode(request, context) {
          const caller = await authenticate(context);
          const result = runtime.promoteMode(request.mode, request.promotedModeName, caller);
          if (result.isErr()) throw toStatusError(result.error);
          await registryCommitted(runtime);
          return { ok: result.value.ok, error: result.value.error, mode: result.value.mode ?? "" };
        },

        async *watchSignals(_request, context) {
          const caller = await authenticate(context);
          const open = (signal: AbortSignal) => {
            const result = runtime.watchSignals(caller, signal);
            if (result.isErr()) throw toStatusError(result.error);
            return result.value;
          };
          yield* serve(context, open, (envelope) => ({ envelope }));
        },

        async listSessions(request, context) {
          const caller = await authenticate(context);
          const result = runtime.listSessions(
            { pageSize: request.pageSize, pageToken: request.pageToken },
            caller,
          );
          if (result.isErr()) throw toStatusError(result.error);
          return result.value;
        },

        async *watchSessions(_request, context) {
          const caller = await authenticate(context);
          const open = (signal: AbortSignal) => {
            const result = runtime.watchSessions(caller, signal);
            if (result.isErr()) throw toStatusError(result.error);
            return result.value;
          };
          yield* serve(context, open, (event) => ({ event }));
        },

        async registerPolicy(request, context) {
          const caller = await authenticate(context);
          const result = runtime.registerPolicy(request.policyDescriptor, caller);
          if (result.isErr()) throw toStatusError(result.error);
          await registryCommitted(runtime);
          return { ok: result.value.ok, error: result.value.error };
        },

        async unregisterPolicy(request, context) {
          const caller = await authenticate(context);
          const result = runtime.unregisterPolicy(request.policyId, caller);
          if (result.isErr()) throw toStatusError(result.error);
          await registryCommitted(runtime);
          return { ok: result.value.ok, error: result.value.error };
        },

        async getPolicy(request, context) {
          const caller = await authenticate(context);
          const result = runtime.getPolicy(request.policyId, caller);
          if (result.isErr()) throw toStatusError(result.error);
          return { policyDescriptor: result.value };
        },

        async listPolicies(request, context) {
          const caller = await authenticate(context);
          const result = runtime.listPolicies(request.mode, caller);
          if (result.isErr()) throw toStatusError(result.error);
          return result.value;
        },

        watchPolicies(_request, context) {
          return serve(
            context,
            (signal) => runtime.watchPolicies(signal),
            (snapshot) => snapshot,
          );
        },
      },
      { readMaxBytes },
    );
    if (healthState !== false) {
      registerHealthService(router, healthState, { readMaxBytes, shutdownSignal });
    }
  };
}

/** With a shared store, a registry change is answered only once every instance can see it. */
async function registryCommitted(runtime: MacpRuntime): Promise<void> {
  const committed = await runtime.registryCommitted?.();
  if (committed?.isErr()) throw toStatusError(committed.error);
}
