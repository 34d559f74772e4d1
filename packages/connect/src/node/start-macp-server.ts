import type * as http from "node:http";
import * as http2 from "node:http2";
import type { AddressInfo, Server, Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import type { ConnectRouter } from "@connectrpc/connect";
import type { MacpRuntime, RuntimeLogger } from "@macp/core";
import { createHealthState } from "@macp/core/wire";
import { installStreamTable } from "@macp/node-http2";
import { createMacpRoutes, type MacpRoutesOptions } from "../create-macp-routes.js";
import { connectionOf, createConnectionTracker } from "./connection-tracker.js";
import { createCorsHandler, type MacpCorsOptions } from "./cors-handler.js";
import { createGuardedNodeHandler } from "./create-guarded-node-handler.js";
import { useSpecGrpcMessageEncoding } from "./grpc-message-encoding.js";
import { createPlaintextServer, type NodeRequestListener } from "./plaintext-server.js";
import { startTimerDriver, type TimerDriver, type TimerDriverOptions } from "./timer-driver.js";

/** PEM-encoded server certificate (chain) and private key. */
export interface MacpTlsOptions {
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
}

export interface MacpServerOptions extends Omit<MacpRoutesOptions, "health" | "shutdownSignal"> {
  /** The runtime to serve. The server owns it from here: `close()` closes it. */
  readonly runtime: MacpRuntime;
  /** Interface to bind. Default "127.0.0.1" (loopback only; use "0.0.0.0" in a container). */
  readonly host?: string;
  /** Port to bind; 0 picks a free one (see `MacpServer.address`). Default 50051. */
  readonly port?: number;
  /**
   * Serve TLS (HTTP/2, with HTTP/1.1 fallback so gRPC-Web and Connect work
   * from browsers and plain HTTP/1.1 clients). Default: none, i.e. plaintext
   * HTTP/2 (h2c, which gRPC clients accept only when told to connect
   * insecurely) and HTTP/1.1 on the same port, told apart by the HTTP/2
   * connection preface. Plaintext is for development (core.md AUTH-10).
   */
  readonly tls?: MacpTlsOptions;
  /**
   * Let pages from other origins call the server (MACP_CORS_ORIGINS). Default:
   * off, i.e. no CORS headers at all, so browsers allow only same-origin pages.
   */
  readonly cors?: MacpCorsOptions;
  /** HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS per connection (MACP_MAX_CONCURRENT_STREAMS). Default 128. */
  readonly maxConcurrentStreams?: number;
  /**
   * How long a request may take to arrive and be answered (MACP_REQUEST_TIMEOUT_SECS).
   * When it expires before a unary call is answered or before a server
   * stream's request is in, the handler's abort signal fires and a request
   * body still arriving fails, so the call ends with CANCELLED. Bidi streams
   * (StreamSession) are exempt, and no stream is cut once its request is in.
   * Default 30 000 ms.
   */
  readonly requestTimeoutMs?: number;
  /**
   * Requests of one connection admitted at a time, over the same phase the
   * request timeout covers (MACP_CONCURRENCY_LIMIT_PER_CONNECTION). Further
   * requests wait for a slot; they are not refused. Default 64.
   */
  readonly concurrencyLimitPerConnection?: number;
  /**
   * How long a connection may carry no request before it is closed: a socket
   * that never sends a request (nor completes the TLS handshake or the HTTP/2
   * preface), or an idle keep-alive connection. HTTP/2 connections get GOAWAY,
   * so gRPC clients reconnect for their next call. Default 30 000 ms.
   */
  readonly idleTimeoutMs?: number;
  /**
   * Drive the runtime's timers (TTL expiry, eviction): see {@link startTimerDriver}.
   * `false` when something else calls `processDueWork()`. Default: on, with
   * the routes' `clock`.
   */
  readonly timerDriver?: false | Omit<TimerDriverOptions, "clock" | "logger">;
  /** Where server errors are reported. Default: console. */
  readonly logger?: Pick<RuntimeLogger, "info" | "error">;
  /**
   * More Connect services served beside MACPRuntimeService, on the same port
   * and protocols (the inspector's, for one). `shutdownSignal` fires when
   * `close()` starts, so their streams can end too. Default: none.
   */
  readonly extraRoutes?: (router: ConnectRouter, context: { shutdownSignal: AbortSignal }) => void;
  /**
   * Handles requests that no RPC route matches (a web page, for one); returns
   * false to let the server answer 404. Default: none.
   */
  readonly fallback?: (...call: NodeRequestCall) => boolean;
  /**
   * Whether `close()` ends with `runtime.close()`. `false` when another
   * transport serves the same runtime and the host closes it after both.
   * Default true.
   */
  readonly closeRuntime?: boolean;
}

/** The request and response of a Node HTTP/1.1 or HTTP/2 call, as Connect's adapter passes them. */
export type NodeRequestCall = Parameters<NodeRequestListener>;

export interface MacpServerCloseOptions {
  /** How long unary calls in flight may take to finish before connections are cut. Default 10 000 ms (MACP_SHUTDOWN_DRAIN_SECS). */
  readonly drainMs?: number;
}

export interface MacpServer {
  /** The bound address; `port` is the real one when 0 was asked for. */
  readonly address: { readonly host: string; readonly port: number };
  /** Base URL for Connect clients, e.g. `http://127.0.0.1:50051`. */
  readonly url: string;
  /**
   * Graceful shutdown: health turns NOT_SERVING, the listener stops accepting,
   * HTTP/2 connections get GOAWAY, open streams end with UNAVAILABLE, unary
   * calls in flight get up to `drainMs` to finish, remaining connections are
   * cut, the timer driver stops, and `runtime.close()` flushes the store.
   * Resolves when all of that is done. Calling it again returns the same promise.
   */
  close(options?: MacpServerCloseOptions): Promise<void>;
}

const DEFAULT_DRAIN_MS = 10_000;
const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
const DEFAULT_CONCURRENCY_LIMIT_PER_CONNECTION = 64;
const DEFAULT_IDLE_TIMEOUT_MS = 30_000;
const TRAILER_FLUSH_MS = 250;

/** Resolves when every session has closed, or after `ms`. */
function sessionsClosed(
  sessions: ReadonlySet<http2.ServerHttp2Session>,
  ms: number,
): Promise<void> {
  const open = [...sessions].filter((session) => !session.destroyed);
  if (open.length === 0) return Promise.resolve();
  return new Promise((resolve) => {
    const timeout = setTimeout(resolve, ms);
    let remaining = open.length;
    for (const session of open) {
      session.once("close", () => {
        remaining--;
        if (remaining === 0) {
          clearTimeout(timeout);
          resolve();
        }
      });
    }
  });
}

/**
 * A response that starts before its request body was read to the end (a
 * request refused for its size) leaves the rest of the body in flight on an
 * HTTP/1.1 connection; reusing that connection fails the next call with a
 * reset. So such a response closes the connection instead.
 */
function closeIfBodyUnread(request: http.IncomingMessage, response: http.ServerResponse): void {
  const writeHead = response.writeHead;
  const guarded: typeof writeHead = function (this: http.ServerResponse, ...args) {
    if (!request.complete && !response.headersSent) response.setHeader("connection", "close");
    return Reflect.apply(writeHead, this, args);
  } as typeof writeHead;
  response.writeHead = guarded;
}

/**
 * Starts a Node HTTP/2 server with the MACP routes (all three protocols) and
 * grpc.health.v1, plus the runtime's timer driver. Resolves once listening.
 */
export async function startMacpServer(options: MacpServerOptions): Promise<MacpServer> {
  const { runtime, tls } = options;
  const host = options.host ?? "127.0.0.1";
  const logger = options.logger ?? console;
  const health = createHealthState();
  const shutdown = new AbortController();

  const idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  const connections = createConnectionTracker({
    idleTimeoutMs,
    concurrencyLimit:
      options.concurrencyLimitPerConnection ?? DEFAULT_CONCURRENCY_LIMIT_PER_CONNECTION,
  });
  const macpRoutes = createMacpRoutes(runtime, {
    authenticate: (headers) => options.authenticate(headers),
    clock: options.clock,
    maxReceiveMessageBytes: options.maxReceiveMessageBytes,
    health,
    shutdownSignal: shutdown.signal,
  });
  const { extraRoutes } = options;
  const handler = createGuardedNodeHandler({
    routes: (router) => {
      macpRoutes(router);
      extraRoutes?.(router, { shutdownSignal: shutdown.signal });
    },
    ...(options.fallback === undefined ? {} : { fallback: options.fallback }),
    requestTimeoutMs: options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
    connections,
    shutdownSignal: shutdown.signal,
    logger,
  });

  let closing = false;
  let inFlight = 0;
  let onIdle: (() => void) | undefined;
  const cors = options.cors === undefined ? undefined : createCorsHandler(options.cors);
  const dispatch: NodeRequestListener = (request, response) => {
    if (closing) {
      // Only an HTTP/1.1 keep-alive connection can still bring a request here;
      // HTTP/2 connections have had GOAWAY. Connect clients read 503 as UNAVAILABLE.
      response.writeHead(503, request.httpVersionMajor >= 2 ? {} : { connection: "close" });
      response.end();
      return;
    }
    inFlight++;
    const connection = connectionOf(request);
    connections.started(connection);
    // A call is over once its response is written, even if the client has not
    // half-closed its side of a bidi stream: the HTTP/2 compat response only
    // emits "finish" when both sides are closed, so watch the stream itself.
    // "close" covers resets.
    let done = false;
    const settle = (): void => {
      if (done) return;
      done = true;
      inFlight--;
      connections.ended(connection);
      if (inFlight === 0) onIdle?.();
    };
    if ("stream" in response) response.stream.once("finish", settle);
    else response.once("finish", settle);
    response.once("close", settle);
    useSpecGrpcMessageEncoding(response);
    if (!("stream" in request) && !("stream" in response)) closeIfBodyUnread(request, response);
    handler(request, response);
  };
  const listener: NodeRequestListener =
    cors === undefined
      ? dispatch
      : (request, response) => cors(request, response, () => dispatch(request, response));

  const settings: http2.Settings = { maxConcurrentStreams: options.maxConcurrentStreams ?? 128 };
  let server: Server;
  let http2Server: http2.Http2Server | http2.Http2SecureServer;
  if (tls === undefined) {
    const plaintext = createPlaintextServer(
      // From the preface on, the HTTP/2 session is the connection to watch.
      { settings, onHttp2: (socket) => connections.forget(socket) },
      listener,
    );
    server = plaintext.server;
    http2Server = plaintext.http2;
    server.on("connection", (socket: Socket) => connections.track(socket));
  } else {
    const secure = http2.createSecureServer(
      { cert: tls.cert, key: tls.key, allowHTTP1: true, settings, handshakeTimeout: idleTimeoutMs },
      listener,
    );
    secure.on("secureConnection", (socket: TLSSocket) => {
      if (socket.alpnProtocol !== "h2") connections.track(socket);
    });
    http2Server = secure;
    server = secure;
  }

  const sockets = new Set<Socket>();
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  http2Server.on("session", (session: http2.ServerHttp2Session) => {
    // Open streams in a table whose garbage dies young (see @macp/node-http2).
    installStreamTable(session);
    connections.track(session);
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 50051, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  server.on("error", (error) => {
    logger.error("MACP server error", { error });
  });

  const bound = server.address() as AddressInfo;
  const address = { host, port: bound.port };
  const urlHost = host.includes(":") ? `[${host}]` : host;
  const url = `${tls === undefined ? "http" : "https"}://${urlHost}:${bound.port}`;

  let timers: TimerDriver | undefined;
  if (options.timerDriver !== false) {
    timers = startTimerDriver(runtime, {
      ...options.timerDriver,
      ...(options.clock === undefined ? {} : { clock: options.clock }),
      logger,
    });
  }

  const drained = (drainMs: number): Promise<void> =>
    new Promise((resolve) => {
      if (inFlight === 0) {
        resolve();
        return;
      }
      const timeout = setTimeout(resolve, drainMs);
      onIdle = () => {
        clearTimeout(timeout);
        resolve();
      };
    });

  let closed: Promise<void> | undefined;
  const close = async (closeOptions: MacpServerCloseOptions): Promise<void> => {
    closing = true;
    health.setServing(false);
    server.close();
    for (const session of sessions) session.close();
    shutdown.abort();
    await drained(closeOptions.drainMs ?? DEFAULT_DRAIN_MS);
    // Every response is written, but trailers may still be queued in a session,
    // and a client may hold its half of a finished bidi stream open (which keeps
    // its session from closing after GOAWAY). Give them a moment, then cut.
    await sessionsClosed(sessions, TRAILER_FLUSH_MS);
    for (const session of sessions) session.destroy();
    for (const socket of sockets) socket.destroy();
    await timers?.stop();
    if (options.closeRuntime !== false) await runtime.close();
  };

  return {
    address,
    url,
    close(closeOptions = {}) {
      closed ??= close(closeOptions);
      return closed;
    },
  };
}
