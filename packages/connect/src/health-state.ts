import type { ConnectRouter } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { health, MACPRuntimeService } from "@macp/proto";
import { linkSignals } from "./linked-signal.js";

const { Health, HealthCheckResponse_ServingStatus: ServingStatus } = health;
type ServingStatus = health.HealthCheckResponse_ServingStatus;

/**
 * The serving status reported by the standard `grpc.health.v1.Health`
 * service. It starts SERVING; a host flips it to NOT_SERVING when shutdown
 * begins, so load balancers stop routing new calls while open ones drain.
 */
export interface HealthState {
  /** Whether the runtime accepts new work. */
  readonly serving: boolean;
  /** Changes the status of every reported service and tells open Watch calls. */
  setServing(serving: boolean): void;
  /**
   * The status of one service: `""` (the server as a whole) and
   * `macp.v1.MACPRuntimeService` are known; `undefined` for any other name.
   */
  statusOf(service: string): ServingStatus | undefined;
  /** Calls `listener` after every change; returns the function that removes it. */
  onChange(listener: () => void): () => void;
}

/** The service names a health check may ask about (RPC-1). */
const REPORTED_SERVICES: ReadonlySet<string> = new Set(["", MACPRuntimeService.typeName]);

/** Creates a health state that reports SERVING until {@link HealthState.setServing} says otherwise. */
export function createHealthState(): HealthState {
  let serving = true;
  const listeners = new Set<() => void>();
  return {
    get serving() {
      return serving;
    },
    setServing(next) {
      if (next === serving) return;
      serving = next;
      for (const listener of [...listeners]) listener();
    },
    statusOf(service) {
      if (!REPORTED_SERVICES.has(service)) return undefined;
      return serving ? ServingStatus.SERVING : ServingStatus.NOT_SERVING;
    },
    onChange(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },
  };
}

/** Options the routes pass down to the health service. */
export interface HealthRouteOptions {
  readonly readMaxBytes: number;
  /** Ends open Watch calls. */
  readonly shutdownSignal: AbortSignal | undefined;
}

/** Registers `grpc.health.v1.Health` on a router, answering from `state`. */
export function registerHealthService(
  router: ConnectRouter,
  state: HealthState,
  options: HealthRouteOptions,
): void {
  router.service(
    Health,
    {
      check(request) {
        const status = state.statusOf(request.service);
        // As the gRPC health service does: an unknown name is NOT_FOUND, not SERVICE_UNKNOWN.
        if (status === undefined) {
          throw new ConnectError(`unknown service "${request.service}"`, Code.NotFound);
        }
        return { status };
      },
      async *watch(request, context) {
        const linked = linkSignals(context.signal, options.shutdownSignal);
        const signal = linked.signal;
        // `changed` closes the window between reading the status and starting to wait.
        let changed = false;
        let wake: (() => void) | undefined;
        const onWake = (): void => {
          changed = true;
          wake?.();
        };
        const unsubscribe = state.onChange(onWake);
        signal.addEventListener("abort", onWake, { once: true });
        try {
          let last: ServingStatus | undefined;
          for (;;) {
            changed = false;
            // Watch keeps the call open for unknown names (SERVICE_UNKNOWN), per the gRPC health protocol.
            const status = state.statusOf(request.service) ?? ServingStatus.SERVICE_UNKNOWN;
            if (status !== last) {
              last = status;
              yield { status };
            }
            // Checked after the status, so a shutdown still tells watchers NOT_SERVING before ending.
            if (signal.aborted) break;
            if (!changed) {
              await new Promise<void>((resolve) => {
                wake = resolve;
              });
            }
            wake = undefined;
          }
          if (options.shutdownSignal?.aborted === true) {
            throw new ConnectError("the server is shutting down", Code.Unavailable);
          }
        } finally {
          unsubscribe();
          signal.removeEventListener("abort", onWake);
          linked.dispose();
        }
      },
    },
    { readMaxBytes: options.readMaxBytes },
  );
}
