import { createRouterTransport, type Interceptor, type Transport } from "@connectrpc/connect";
import { createMacpRoutes, type MacpRoutesOptions } from "@macp/connect";
import {
  type Caller,
  type Clock,
  createDevIdentity,
  type Identity,
  type MacpRuntime,
} from "@macp/core";

/** Options every in-process transport takes, whatever its identity source. */
export interface InProcessTransportCommonOptions {
  /**
   * The time written into NACKs the routes build (`accepted_at_unix_ms`). Pass
   * the runtime's clock so NACKs agree with acks and transcripts stay
   * deterministic. Default: the wall clock, as on a real server.
   */
  readonly clock?: Clock;
  /** Client-side Connect interceptors, outermost first (e.g. a transcript recorder). Default none. */
  readonly interceptors?: readonly Interceptor[];
  /**
   * Serialize messages as binary protobuf (true) or as the canonical JSON
   * mapping (false). Either way every request and response goes through a
   * real encode and decode, so a message that would not survive the wire
   * fails here too. Default true, as gRPC clients do.
   */
  readonly useBinaryFormat?: boolean;
  /** See {@link MacpRoutesOptions.maxReceiveMessageBytes}. Default: the server's default. */
  readonly maxReceiveMessageBytes?: number;
  /**
   * When aborted, open streams end with UNAVAILABLE, as on a server that is
   * shutting down. Default: none.
   */
  readonly shutdownSignal?: AbortSignal;
}

/** Every call is made as one fixed identity; request headers are ignored. */
export interface FixedIdentityTransportOptions extends InProcessTransportCommonOptions {
  /** The caller of every RPC. A string is a dev identity with that sender (full privileges). */
  readonly identity: Identity | string;
  readonly authenticate?: undefined;
}

/** Callers are resolved from each call's headers, exactly as the server does. */
export interface AuthenticatingTransportOptions extends InProcessTransportCommonOptions {
  /**
   * The server's authentication hook, called with the headers the client sent
   * (e.g. `authorization: Bearer …` from the call options or an interceptor).
   * Same contract as {@link MacpRoutesOptions.authenticate}.
   */
  readonly authenticate: MacpRoutesOptions["authenticate"];
  readonly identity?: undefined;
}

export type InProcessTransportOptions =
  | FixedIdentityTransportOptions
  | AuthenticatingTransportOptions;

/**
 * A Connect {@link Transport} that serves every call from `runtime` in the
 * same process: the very routes `@macp/connect` mounts on a server (all 24
 * RPCs: unary, server-streaming and the bidirectional StreamSession), with
 * real message encoding, the Connect protocol's framing and the server's
 * error mapping, but no socket, port or timer. An agent written against
 * `createClient(MACPRuntimeService, transport)` runs unchanged.
 *
 * Streams are cancelled with the call's AbortSignal (`{ signal }` in the call
 * options), which also ends the server side. Leaving a `for await` loop early
 * does not: Connect's client iterators have no `return()`, so the server keeps
 * the stream until the runtime closes.
 *
 * Throws a TypeError unless exactly one of `identity` and `authenticate` is given.
 */
export function createInProcessTransport(
  runtime: MacpRuntime,
  options: InProcessTransportOptions,
): Transport {
  const routes = createMacpRoutes(runtime, {
    authenticate: authenticatorOf(options),
    ...(options.clock === undefined ? {} : { clock: options.clock }),
    ...(options.maxReceiveMessageBytes === undefined
      ? {}
      : { maxReceiveMessageBytes: options.maxReceiveMessageBytes }),
    ...(options.shutdownSignal === undefined ? {} : { shutdownSignal: options.shutdownSignal }),
  });
  return createRouterTransport(routes, {
    transport: {
      interceptors: [...(options.interceptors ?? [])],
      useBinaryFormat: options.useBinaryFormat ?? true,
    },
  });
}

function authenticatorOf(options: InProcessTransportOptions): MacpRoutesOptions["authenticate"] {
  const { identity, authenticate } = options;
  if (identity !== undefined && authenticate !== undefined) {
    throw new TypeError("pass either identity or authenticate, not both");
  }
  if (authenticate !== undefined) return authenticate;
  if (identity === undefined) {
    throw new TypeError("an in-process transport needs an identity or an authenticate hook");
  }
  const caller: Caller = typeof identity === "string" ? createDevIdentity(identity) : identity;
  return () => caller;
}
