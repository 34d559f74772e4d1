import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";

/** What every HTTP/2 connection starts with (RFC 9113 §3.4); no HTTP/1.x request can. */
const HTTP2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

/** One listener for both protocols: the Node request and response of either server. */
export type NodeRequestListener = (
  request: http.IncomingMessage | http2.Http2ServerRequest,
  response: http.ServerResponse | http2.Http2ServerResponse,
) => void;

/** A cleartext port that speaks HTTP/2 (h2c, prior knowledge) and HTTP/1.1. */
export interface PlaintextServer {
  /** The listening socket server; each connection is handed to `http2` or `http1`. */
  readonly server: net.Server;
  /** Serves connections that open with the HTTP/2 preface: gRPC clients. */
  readonly http2: http2.Http2Server;
  /** Serves every other connection: browsers, curl, Connect and gRPC-Web over HTTP/1.1. */
  readonly http1: http.Server;
}

/**
 * Without TLS there is no ALPN to pick the protocol, so the first bytes of
 * each connection decide: the HTTP/2 client preface goes to the HTTP/2
 * server, anything else to the HTTP/1.1 server. Both call `listener`, so
 * gRPC clients see the same h2c server as before and HTTP/1.1 clients get
 * answers instead of an HTTP/2 SETTINGS frame.
 */
export function createPlaintextServer(
  options: {
    readonly settings: http2.Settings;
    /** Called as a connection is handed to the HTTP/2 server. */
    readonly onHttp2?: (socket: net.Socket) => void;
  },
  listener: NodeRequestListener,
): PlaintextServer {
  const h2 = http2.createServer({ settings: options.settings }, listener);
  const h1 = http.createServer(listener);
  const server = net.createServer((socket) => {
    let received: Buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
      const compared = Math.min(received.length, HTTP2_PREFACE.length);
      const prefaceSoFar = received
        .subarray(0, compared)
        .equals(HTTP2_PREFACE.subarray(0, compared));
      // A prefix of the preface could still become either protocol: wait for more.
      if (prefaceSoFar && compared < HTTP2_PREFACE.length) return;
      socket.off("data", onData);
      socket.off("close", onClose);
      socket.pause();
      socket.unshift(received);
      if (prefaceSoFar) {
        // The HTTP/2 session reads what is buffered on the socket itself; a
        // resumed socket would emit it as "data" events that nobody handles.
        options.onHttp2?.(socket);
        h2.emit("connection", socket);
      } else {
        h1.emit("connection", socket);
        socket.resume();
      }
    };
    const onClose = (): void => {
      socket.off("data", onData);
    };
    socket.on("data", onData);
    socket.once("close", onClose);
  });
  return { server, http2: h2, http1: h1 };
}
