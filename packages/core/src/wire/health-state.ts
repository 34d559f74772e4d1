import { health, MACPRuntimeService } from "@macp/proto";

const { HealthCheckResponse_ServingStatus: ServingStatus } = health;
type ServingStatus = health.HealthCheckResponse_ServingStatus;

/**
 * The serving status reported by the standard `grpc.health.v1.Health`
 * service. It starts SERVING; a host flips it to NOT_SERVING when shutdown
 * begins, so load balancers stop routing new calls while open ones drain.
 * One state can back several transports (the server flips them together).
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

/**
 * The statuses a health Watch call reports for `service`: the current one,
 * then each change, until `signal` fires. An unknown name reports
 * SERVICE_UNKNOWN and keeps the call open, per the gRPC health protocol. The
 * status current when `signal` fires is still reported, so a shutdown tells
 * watchers NOT_SERVING before their call ends.
 */
export async function* watchHealth(
  state: HealthState,
  service: string,
  signal: AbortSignal,
): AsyncGenerator<ServingStatus, void, undefined> {
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
      const status = state.statusOf(service) ?? ServingStatus.SERVICE_UNKNOWN;
      if (status !== last) {
        last = status;
        yield status;
      }
      if (signal.aborted) return;
      if (!changed) {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
      wake = undefined;
    }
  } finally {
    unsubscribe();
    signal.removeEventListener("abort", onWake);
  }
}
