import { EventEmitter } from "node:events";
import { createServer, type Server as NetServer, type Socket } from "node:net";
import { createServer as createTlsServer } from "node:tls";
import { Server, ServerCredentials, type ServerOptions } from "@grpc/grpc-js";
import type { MacpRuntime, RuntimeLogger } from "@macp/core";
import { createHealthState, type HealthState } from "@macp/core/wire";
import { type Http2SessionSource, installStreamTables } from "@macp/node-http2";
import { addMacpGrpcServices, type MacpGrpcServicesOptions } from "./add-macp-grpc-services.js";
import { createCallGuard } from "./create-call-guard.js";

/** The default request-size limit: the 1 MiB payload limit plus 64 KiB for the rest of the envelope (core.md §20). */
export const DEFAULT_MAX_RECEIVE_MESSAGE_BYTES = 1_048_576 + 65_536;

/** PEM-encoded server certificate (chain) and private key. */
export interface MacpGrpcTlsOptions {
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
}

export interface MacpGrpcServerOptions
  extends Omit<MacpGrpcServicesOptions, "health" | "shutdownSignal"> {
  /**
   * The runtime to serve. The server owns it unless `closeRuntime` is false.
   * It does not drive the runtime's timers: run `startTimerDriver` from
   * `@macp/connect/node` (or call `runtime.processDueWork()` yourself).
   */
  readonly runtime: MacpRuntime;
  /**
   * Whether `close()` ends with `runtime.close()` (flushing the store).
   * `false` when other transports serve the same runtime and the host closes
   * it after all of them. Default true.
   */
  readonly closeRuntime?: boolean;
  /** Interface to bind. Default "127.0.0.1" (loopback only; use "0.0.0.0" in a container). */
  readonly host?: string;
  /** Port to bind; 0 picks a free one (see `MacpGrpcServer.address`). Default 50051. */
  readonly port?: number;
  /**
   * Serve TLS. Default: none, i.e. plaintext HTTP/2 (h2c), which gRPC clients
   * accept only when told to connect insecurely. Plaintext is for development
   * (core.md AUTH-10).
   */
  readonly tls?: MacpGrpcTlsOptions;
  /**
   * Largest request message accepted, in bytes; a larger one is refused with
   * RESOURCE_EXHAUSTED before any handler runs. Default
   * {@link DEFAULT_MAX_RECEIVE_MESSAGE_BYTES}; keep it at the runtime's
   * `maxPayloadBytes` + 64 KiB, or oversized payloads never reach the
   * PAYLOAD_TOO_LARGE check.
   */
  readonly maxReceiveMessageBytes?: number;
  /** HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS per connection (MACP_MAX_CONCURRENT_STREAMS). Default 128. */
  readonly maxConcurrentStreams?: number;
  /**
   * How long a connection may stay without a call in flight before it is
   * closed (GOAWAY), and how long a new connection gets to send the HTTP/2
   * preface, or to finish its TLS handshake, before it is cut, so silent
   * sockets cannot pile up. Default 30 000 ms.
   */
  readonly idleTimeoutMs?: number;
  /**
   * How long a call may take (MACP_REQUEST_TIMEOUT_SECS), as on the Connect
   * listener: a unary call not answered by then, wherever it is stuck
   * (its request, a slot, the authenticator, the store), and a server stream
   * whose request is not in by then, end with CANCELLED. StreamSession (bidi)
   * is exempt, and so is a server stream once its request is in. Default
   * 30 000 ms.
   */
  readonly requestTimeoutMs?: number;
  /**
   * Calls of one connection handled at a time
   * (MACP_CONCURRENCY_LIMIT_PER_CONNECTION), as on the Connect listener: a
   * call holds its slot for the phase the request timeout covers; further
   * calls wait in arrival order (their handler does not see them yet), they
   * are not refused. A waiting call still times out, and one its client
   * cancels leaves the queue. Default 64.
   */
  readonly concurrencyLimitPerConnection?: number;
  /**
   * The health state to report. Default: the server's own. Pass one state to
   * several transports so they turn NOT_SERVING together.
   */
  readonly health?: HealthState;
  /** Where server errors are reported. Default: console. */
  readonly logger?: Pick<RuntimeLogger, "error">;
}

export interface MacpGrpcServerCloseOptions {
  /** How long calls in flight may take to finish before connections are cut. Default 10 000 ms. */
  readonly drainMs?: number;
}

export interface MacpGrpcServer {
  /** The bound address; `port` is the real one when 0 was asked for. */
  readonly address: { readonly host: string; readonly port: number };
  /** Base URL, e.g. `http://127.0.0.1:50051` (grpc-js clients take `127.0.0.1:50051`). */
  readonly url: string;
  /**
   * Graceful shutdown: health turns NOT_SERVING, open streams end with
   * UNAVAILABLE, connections get GOAWAY, calls in flight get up to `drainMs`
   * to finish, then remaining connections are cut, and the runtime is closed
   * (unless `closeRuntime` is false). Calling it again returns the same promise.
   */
  close(options?: MacpGrpcServerCloseOptions): Promise<void>;
}

const DEFAULT_DRAIN_MS = 10_000;
const DEFAULT_IDLE_TIMEOUT_MS = 30_000;
const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
const DEFAULT_CONCURRENCY_LIMIT_PER_CONNECTION = 64;

// Every HTTP/2 connection opens with this many bytes of client preface (RFC 9113 §3.4).
const HTTP2_PREFACE_BYTES = 24;
// After the last call ends, how long trailers and GOAWAY get before connections are cut.
const TRAILER_FLUSH_MS = 250;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function bindAddress(host: string, port: number): string {
  return `${host.includes(":") ? `[${host}]` : host}:${port}`;
}

/**
 * The node:http2 servers grpc-js made for `server`'s connection injectors.
 * grpc-js offers no public way to reach them, so this reads its private
 * `http2Servers` Map (grpc-js 1.10 to 1.14); anything else yields none, and
 * the sessions then keep node:http2's own stream Map.
 */
function http2ServersOf(server: Server): Http2SessionSource[] {
  const http2Servers: unknown = Reflect.get(server, "http2Servers");
  if (!(http2Servers instanceof Map)) return [];
  return [...http2Servers.keys()].filter(
    (candidate): candidate is Http2SessionSource => candidate instanceof EventEmitter,
  );
}

/**
 * Starts an @grpc/grpc-js server with the MACPRuntimeService and
 * grpc.health.v1 over `runtime`. gRPC only (what the SDKs speak): gRPC-Web and
 * the Connect protocol are @macp/connect's. Resolves once listening.
 */
export async function startMacpGrpcServer(options: MacpGrpcServerOptions): Promise<MacpGrpcServer> {
  const { runtime, tls } = options;
  const host = options.host ?? "127.0.0.1";
  const health = options.health ?? createHealthState();
  const shutdown = new AbortController();

  const idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  const serverOptions: ServerOptions = {
    "grpc.max_connection_idle_ms": idleTimeoutMs,
    "grpc.max_receive_message_length":
      options.maxReceiveMessageBytes ?? DEFAULT_MAX_RECEIVE_MESSAGE_BYTES,
    "grpc.max_send_message_length": -1,
    "grpc.max_concurrent_streams": options.maxConcurrentStreams ?? 128,
    // Channelz is not served, and its bookkeeping costs every call closures
    // and clock reads. Without it grpc-js's forceShutdown() cuts no
    // connection, so close() destroys the sockets it accepted itself.
    "grpc.enable_channelz": 0,
  };
  const guard = createCallGuard({
    requestTimeoutMs: options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
    concurrencyLimitPerConnection:
      options.concurrencyLimitPerConnection ?? DEFAULT_CONCURRENCY_LIMIT_PER_CONNECTION,
  });
  const server = new Server({ ...serverOptions, interceptors: [guard.interceptor] });
  let inFlight = 0;
  let onIdle: (() => void) | undefined;
  const calls = {
    started() {
      inFlight++;
    },
    ended() {
      inFlight--;
      if (inFlight === 0) onIdle?.();
    },
  };
  addMacpGrpcServices(server, runtime, {
    calls,
    authenticate: (headers) => options.authenticate(headers),
    ...(options.clock === undefined ? {} : { clock: options.clock }),
    health,
    shutdownSignal: shutdown.signal,
  });

  // grpc-js's own listener never times out a socket that sends nothing (it
  // sets no timeout on its http2 server), so the port is ours. A connection
  // must deliver the HTTP/2 preface (plaintext) or finish its TLS handshake
  // (negotiating h2) within the idle timeout; only then does grpc-js get it,
  // through its public connection injector, and its idle timeout applies to
  // the HTTP/2 session. TLS is terminated here, so that the handshake has
  // that deadline too (grpc-js's TLS server would allow Node's default of
  // 120 s), and the injector serves the decrypted stream as plaintext HTTP/2.
  const injector = server.createConnectionInjector(ServerCredentials.createInsecure());
  // Its sessions keep their open streams in tables whose garbage dies young
  // (@macp/node-http2): under steady load this is a fifth of the CPU per call.
  for (const http2Server of http2ServersOf(server)) installStreamTables(http2Server);
  const sockets = new Set<Socket>();
  const handOver = (connection: Socket): void => {
    guard.track(connection);
    injector.injectConnection(connection);
  };
  // Handshakes only: it never listens, the listener below hands it each
  // socket. Until a handshake is done, the socket's deadline stands (found by
  // its peer's address: the TLS socket wraps the one accepted).
  const handshakeDeadlines = new Map<string, ReturnType<typeof setTimeout>>();
  const peerOf = (socket: Socket) => `${socket.remoteAddress}:${socket.remotePort}`;
  const tlsTerminator =
    tls === undefined
      ? undefined
      : createTlsServer({ cert: tls.cert, key: tls.key, ALPNProtocols: ["h2"] }, (secure) => {
          const peer = peerOf(secure);
          clearTimeout(handshakeDeadlines.get(peer));
          handshakeDeadlines.delete(peer);
          // A TLS socket's errors are its owner's to handle (nodejs/node#35824),
          // as grpc-js's own TLS server does: the HTTP/2 session may not be
          // listening yet, or any more, when one comes.
          secure.on("error", () => secure.destroy());
          // gRPC runs on HTTP/2 only; a client that did not negotiate it cannot be served.
          if (secure.alpnProtocol !== "h2") secure.destroy();
          else handOver(secure);
        });
  // A failed handshake: the socket is destroyed already.
  tlsTerminator?.on("tlsClientError", () => {});
  const listener: NetServer = createServer((socket) => {
    sockets.add(socket);
    const deadline = setTimeout(() => socket.destroy(), idleTimeoutMs);
    socket.once("close", () => {
      sockets.delete(socket);
      clearTimeout(deadline);
    });
    socket.on("error", () => socket.destroy());
    if (tlsTerminator !== undefined) {
      const peer = peerOf(socket);
      handshakeDeadlines.set(peer, deadline);
      socket.once("close", () => {
        if (handshakeDeadlines.get(peer) === deadline) handshakeDeadlines.delete(peer);
      });
      tlsTerminator.emit("connection", socket);
      return;
    }
    const received: Buffer[] = [];
    let length = 0;
    const onData = (chunk: Buffer): void => {
      received.push(chunk);
      length += chunk.length;
      if (length < HTTP2_PREFACE_BYTES) return;
      clearTimeout(deadline);
      socket.off("data", onData);
      socket.pause();
      socket.unshift(Buffer.concat(received));
      handOver(socket);
    };
    socket.on("data", onData);
  });
  const port = await new Promise<number>((resolve, reject) => {
    listener.once("error", reject);
    listener.listen(options.port ?? 50051, host, () => {
      listener.off("error", reject);
      const bound = listener.address();
      resolve(typeof bound === "object" && bound !== null ? bound.port : 0);
    });
  });

  const address = { host, port };
  const url = `${tls === undefined ? "http" : "https"}://${bindAddress(host, port)}`;

  /** Resolves when no call is in flight, or after `ms`. */
  const idle = (ms: number): Promise<void> =>
    inFlight === 0
      ? Promise.resolve()
      : new Promise((resolve) => {
          const timeout = setTimeout(resolve, ms);
          onIdle = () => {
            clearTimeout(timeout);
            resolve();
          };
        });

  let closed: Promise<void> | undefined;
  const close = async (drainMs: number): Promise<void> => {
    health.setServing(false);
    listener.close();
    // Stops accepting calls and sends GOAWAY; resolves once every connection has closed.
    const shutDown = new Promise<void>((resolve) => {
      server.tryShutdown((error) => {
        if (error !== undefined) {
          (options.logger ?? console).error("MACP gRPC server shutdown failed", { error });
        }
        resolve();
      });
    });
    shutdown.abort();
    guard.shutDown();
    await Promise.race([shutDown, idle(drainMs)]);
    // A client may hold its half of a finished bidi stream open, which keeps
    // its connection from closing after GOAWAY: give trailers a moment, then cut.
    await Promise.race([shutDown, sleep(TRAILER_FLUSH_MS)]);
    server.forceShutdown();
    for (const socket of sockets) socket.destroy();
    injector.destroy();
    if (options.closeRuntime !== false) await runtime.close();
  };

  return {
    address,
    url,
    close(closeOptions = {}) {
      closed ??= close(closeOptions.drainMs ?? DEFAULT_DRAIN_MS);
      return closed;
    },
  };
}
