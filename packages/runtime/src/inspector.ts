// MACP_INSPECTOR=1: the inspector page at /inspector and its InspectorService,
// on the runtime's own port, authenticated like every other call.

import type { MacpServerOptions } from "@macp/connect/node";
import type { Caller, Clock, MacpRuntime } from "@macp/core";
import { createInspectorPage, createInspectorRoutes, type RefusalLog } from "@macp/inspector";

/** What the server needs to serve the inspector. */
export interface InspectorMount {
  readonly extraRoutes: NonNullable<MacpServerOptions["extraRoutes"]>;
  readonly fallback: NonNullable<MacpServerOptions["fallback"]>;
}

/**
 * Throws when the page bundle is missing (the package was not built).
 * `refusals` must observe `runtime` (its `observer` passed to createRuntime).
 */
export function mountInspector(
  runtime: MacpRuntime,
  parts: {
    readonly clock: Clock;
    readonly authenticate: (headers: Headers) => Caller | Promise<Caller>;
    readonly refusals: RefusalLog;
  },
): InspectorMount {
  const page = createInspectorPage();
  return {
    extraRoutes: (router, { shutdownSignal }) =>
      createInspectorRoutes(runtime, {
        authenticate: parts.authenticate,
        refusals: parts.refusals,
        clock: parts.clock,
        shutdownSignal,
      })(router),
    fallback: page,
  };
}
