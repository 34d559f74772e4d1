import { type CallOptions, type Client, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { inspector, MACPRuntimeService } from "@macp/proto";

/** The two protocols a browser can speak to the runtime. */
export type Protocol = "connect" | "grpc-web";

export interface Connection {
  readonly macp: Client<typeof MACPRuntimeService>;
  readonly inspector: Client<typeof inspector.InspectorService>;
}

/** Clients for the runtime the page was served from (or `baseUrl`). */
export function openConnection(protocol: Protocol, baseUrl: string): Connection {
  const transport =
    protocol === "grpc-web"
      ? createGrpcWebTransport({ baseUrl })
      : createConnectTransport({ baseUrl });
  return {
    macp: createClient(MACPRuntimeService, transport),
    inspector: createClient(inspector.InspectorService, transport),
  };
}

/** Call options carrying a bearer credential (in dev mode, the agent id itself). */
export function withBearer(bearer: string, signal?: AbortSignal): CallOptions {
  return {
    headers: bearer === "" ? {} : { authorization: `Bearer ${bearer}` },
    ...(signal === undefined ? {} : { signal }),
  };
}
