import type { JsonValue } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type ConnectRouter,
  createConnectRouter,
  type Interceptor,
} from "@connectrpc/connect";
import {
  type UniversalHandler,
  type UniversalServerRequest,
  type UniversalServerResponse,
  uResponseNotFound,
} from "@connectrpc/connect/protocol";
import {
  compressionBrotli,
  compressionGzip,
  universalRequestFromNodeRequest,
  universalResponseToNodeResponse,
} from "@connectrpc/connect-node";
import type { RuntimeLogger } from "@macp/core";
import { linkSignals } from "@macp/core/wire";
import { type ConnectionTracker, connectionOf } from "./connection-tracker.js";
import type { NodeRequestListener } from "./plaintext-server.js";

export interface GuardedNodeHandlerOptions {
  /** The Connect routes to serve (createMacpRoutes). */
  readonly routes: (router: ConnectRouter) => void;
  /** How long a request may take to arrive and be answered; see {@link createGuardedNodeHandler}. */
  readonly requestTimeoutMs: number;
  /** Admits requests per connection. */
  readonly connections: ConnectionTracker;
  /**
   * Once aborted, a request that would wait for an admission slot, or is
   * waiting for one, is answered UNAVAILABLE instead: its handler never ran,
   * so its client may retry it elsewhere.
   */
  readonly shutdownSignal?: AbortSignal;
  readonly logger: Pick<RuntimeLogger, "error">;
  /** Answers a request no route matches (a web page, for one); false lets the handler answer 404. */
  readonly fallback?: (...call: Parameters<NodeRequestListener>) => boolean;
}

/**
 * connect-node's adapter (connectNodeAdapter) plus what a public server needs
 * per request and it lacks:
 *
 * - A request timeout. Unary calls must be answered within it, server
 *   streams must have received their request by then, bidi streams
 *   (StreamSession) are exempt: a stream may stay open as long as its client
 *   wants. On expiry, a request body still in flight fails, the handler's
 *   signal aborts, and a unary call ends even if its handler is stuck (in an
 *   authenticator or a store that does not answer), with CANCELLED in its
 *   own protocol, as the reference runtime's timeout answers.
 * - Per-connection admission: the same phase of a request holds one of its
 *   connection's slots; requests beyond the limit wait, they are not refused.
 * - A Connect-protocol request whose binary body does not decode answers
 *   invalid_argument (HTTP 400), as connect-go does, not internal (HTTP 500).
 *   gRPC and gRPC-Web keep INTERNAL, as in the reference runtime.
 */
export function createGuardedNodeHandler(options: GuardedNodeHandlerOptions): NodeRequestListener {
  const router = createConnectRouter({
    acceptCompression: [compressionGzip, compressionBrotli],
    interceptors: [endUnaryOnAbort],
  });
  options.routes(router);
  const paths = new Map<string, UniversalHandler>();
  for (const handler of router.handlers) paths.set(handler.requestPath, handler);

  return (request, response) => {
    const handler = paths.get((request.url ?? "").split("?", 2)[0] ?? "");
    if (handler === undefined) {
      if (options.fallback?.(request, response) === true) return;
      response.writeHead(uResponseNotFound.status);
      response.end();
      return;
    }
    const kind = handler.method.methodKind;
    const connection = connectionOf(request);

    // The phase the timeout and the admission slot cover.
    const expiry = new AbortController();
    const gone = new AbortController();
    let release: (() => void) | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let phaseOver = false;
    const endPhase = (): void => {
      if (phaseOver) return;
      phaseOver = true;
      clearTimeout(timer);
      release?.();
    };
    if (kind !== "bidi_streaming") {
      timer = setTimeout(() => {
        expiry.abort(
          new ConnectError(
            `request timeout expired (${options.requestTimeoutMs} ms)`,
            Code.Canceled,
          ),
        );
        endPhase();
      }, options.requestTimeoutMs);
    }
    onResponseStart(response, endPhase);
    if (kind === "server_streaming") request.once("end", endPhase);
    // Waiting for a slot ends on a timeout, the client leaving, or shutdown.
    // Linked by hand and let go once admission is decided: the shutdown signal
    // outlives every call, and AbortSignal.any would leave a reference on it
    // per call for good (Node 20).
    const waiting =
      kind === "bidi_streaming"
        ? undefined
        : linkSignals(expiry.signal, gone.signal, options.shutdownSignal);
    response.once("close", () => {
      gone.abort();
      endPhase();
    });

    const admitted =
      waiting === undefined
        ? Promise.resolve(undefined)
        : options.connections.admit(connection, waiting.signal);
    void admitted.then((slot) => {
      waiting?.dispose();
      if (phaseOver) slot?.();
      else release = slot;
      if (gone.signal.aborted) return;
      if (slot === undefined && kind !== "bidi_streaming" && !expiry.signal.aborted) {
        // Not admitted, and neither gone nor timed out: the server is shutting down.
        expiry.abort(new ConnectError("the server is shutting down", Code.Unavailable));
        endPhase();
      }
      let universalRequest: UniversalServerRequest;
      try {
        universalRequest = universalRequestFromNodeRequest(request, response, undefined, undefined);
      } catch {
        // No authority: neither a Host header nor :authority.
        response.writeHead(400);
        response.end();
        return;
      }
      const handlerSignal = linkSignals(universalRequest.signal, expiry.signal);
      const guarded: UniversalServerRequest = {
        ...universalRequest,
        body: failWhenAborted(universalRequest.body, expiry.signal),
        signal: handlerSignal.signal,
      };
      handler(guarded)
        .then((answer) =>
          isConnectBinaryUnary(guarded) ? invalidArgumentIfUndecodable(answer) : answer,
        )
        .then((answer) => universalResponseToNodeResponse(answer, response))
        .catch((reason: unknown) => {
          if (ConnectError.from(reason).code === Code.Aborted) return;
          options.logger.error(
            `handler for rpc ${handler.method.name} of ${handler.service.typeName} failed`,
            { error: reason },
          );
        })
        .finally(handlerSignal.dispose);
    });
  };
}

/**
 * Ends a unary call when its signal aborts (the request timeout, the client's
 * deadline, the client gone), even if its handler has not answered: connect-es
 * waits for the handler, which may be stuck where the signal does not reach.
 */
const endUnaryOnAbort: Interceptor = (next) => (request) => {
  if (request.stream) return next(request);
  const signal = request.signal;
  if (signal.aborted) return Promise.reject(ConnectError.from(signal.reason, Code.Canceled));
  return new Promise((resolve, reject) => {
    const onAbort = (): void => reject(ConnectError.from(signal.reason, Code.Canceled));
    signal.addEventListener("abort", onAbort, { once: true });
    next(request)
      .then(resolve, reject)
      .finally(() => signal.removeEventListener("abort", onAbort));
  });
};

/** Calls `onStart` when the response's status line and headers are written. */
function onResponseStart(
  response: { writeHead(...args: never[]): unknown },
  onStart: () => void,
): void {
  const writeHead = response.writeHead;
  response.writeHead = function (this: unknown, ...args: never[]) {
    onStart();
    return Reflect.apply(writeHead, this, args);
  };
}

/** The request body, except that a read still waiting when `signal` aborts fails with its reason. */
function failWhenAborted(
  body: AsyncIterable<Uint8Array> | JsonValue,
  signal: AbortSignal,
): AsyncIterable<Uint8Array> | JsonValue {
  if (typeof body !== "object" || body === null || !(Symbol.asyncIterator in body)) return body;
  const source = body as AsyncIterable<Uint8Array>;
  return {
    [Symbol.asyncIterator]() {
      const inner = source[Symbol.asyncIterator]();
      return {
        next() {
          if (signal.aborted) return Promise.reject(signal.reason);
          return new Promise<IteratorResult<Uint8Array>>((resolve, reject) => {
            const onAbort = (): void => reject(signal.reason);
            signal.addEventListener("abort", onAbort, { once: true });
            inner.next().then(
              (result) => {
                signal.removeEventListener("abort", onAbort);
                resolve(result);
              },
              (error: unknown) => {
                signal.removeEventListener("abort", onAbort);
                reject(error);
              },
            );
          });
        },
        return() {
          void inner.return?.().catch(() => {});
          return Promise.resolve({ done: true, value: undefined });
        },
      };
    },
  };
}

const CONNECT_BINARY = /^application\/proto\s*(;|$)/i;

function isConnectBinaryUnary(request: UniversalServerRequest): boolean {
  return request.method === "POST" && CONNECT_BINARY.test(request.header.get("content-type") ?? "");
}

// Connect-ES reports a request message that does not decode as
// `internal: parse binary: …`; the message prefix is how it is told apart
// from a real internal error.
const UNDECODABLE_PREFIX = "parse binary:";

async function invalidArgumentIfUndecodable(
  answer: UniversalServerResponse,
): Promise<UniversalServerResponse> {
  if (answer.status !== 500 || answer.body === undefined) return answer;
  const chunks: Uint8Array[] = [];
  for await (const chunk of answer.body) chunks.push(chunk);
  const bytes = Buffer.concat(chunks);
  const unchanged = { ...answer, body: singleChunk(bytes) };
  let error: unknown;
  try {
    error = JSON.parse(bytes.toString("utf8"));
  } catch {
    return unchanged;
  }
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  if (
    code !== "internal" ||
    typeof message !== "string" ||
    !message.startsWith(UNDECODABLE_PREFIX)
  ) {
    return unchanged;
  }
  const body = Buffer.from(JSON.stringify({ code: "invalid_argument", message }), "utf8");
  const header = new Headers(answer.header);
  header.set("content-length", String(body.length));
  return { ...answer, status: 400, header, body: singleChunk(body) };
}

async function* singleChunk(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  yield bytes;
}
