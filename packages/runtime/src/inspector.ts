// MACP_INSPECTOR=1: the inspector page at /inspector and its InspectorService,
// on the runtime's own port, authenticated like every other call.

import type { MacpServerOptions } from "@macp/connect/node";
import type { Caller, Clock, MacpRuntime } from "@macp/core";
import { createInspectorPage, createInspectorRoutes, createRefusalLog } from "@macp/inspector";

/** What the server needs to serve the inspector. */
export interface InspectorMount {
  /** The runtime to serve, with its refusals recorded for the inspector. */
  readonly runtime: MacpRuntime;
  readonly extraRoutes: NonNullable<MacpServerOptions["extraRoutes"]>;
  readonly fallback: NonNullable<MacpServerOptions["fallback"]>;
}

/** Throws when the page bundle is missing (the package was not built). */
export function mountInspector(
  runtime: MacpRuntime,
  parts: {
    readonly clock: Clock;
    readonly authenticate: (headers: Headers) => Caller | Promise<Caller>;
  },
): InspectorMount {
  const page = createInspectorPage();
  const refusals = createRefusalLog({ clock: parts.clock });
  const observed = refusals.observe(runtime);
  return {
    runtime: observed,
    extraRoutes: (router, { shutdownSignal }) =>
      createInspectorRoutes(observed, {
        authenticate: parts.authenticate,
        refusals,
        clock: parts.clock,
        shutdownSignal,
      })(router),
    fallback: page,
  };
}
