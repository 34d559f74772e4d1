import type { ConnectRouter } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { type HealthState, linkSignals, watchHealth } from "@macp/core/wire";
import { health } from "@macp/proto";

const { Health } = health;

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
        try {
          for await (const status of watchHealth(state, request.service, linked.signal)) {
            yield { status };
          }
          if (options.shutdownSignal?.aborted === true) {
            throw new ConnectError("the server is shutting down", Code.Unavailable);
          }
        } finally {
          linked.dispose();
        }
      },
    },
    { readMaxBytes: options.readMaxBytes },
  );
}
