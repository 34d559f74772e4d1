// Shared fixtures for the transport tests: a dev-mode authenticate function,
// decision-mode envelopes, and small async helpers for driving streams.

import { randomUUID } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import { create, toBinary } from "@bufbuild/protobuf";
import { type MacpServer, type MacpServerOptions, startMacpServer } from "@macp/connect/node";
import {
  type Caller,
  createDevIdentity,
  createRuntime,
  type MacpRuntime,
  type RuntimeLimits,
} from "@macp/core";

import { commitmentEnvelope, startEnvelope, voteEnvelope } from "@macp/core/testing";
import { startMacpGrpcServer } from "@macp/grpc";
import { decision, type Envelope, EnvelopeSchema } from "@macp/proto";

export const DECISION = "macp.mode.decision.v1";

/** A gRPC server over one runtime; `close()` also closes the runtime. */
export type GrpcServer = Pick<MacpServer, "address" | "url" | "close">;

/**
 * The two servers that speak gRPC to the SDKs: Connect on node:http2
 * (@macp/connect/node) and @grpc/grpc-js (@macp/grpc). The suites that check
 * what a gRPC client observes run once per entry.
 */
export const GRPC_SERVERS: readonly (readonly [
  string,
  (options: Omit<MacpServerOptions, "timerDriver" | "logger">) => Promise<GrpcServer>,
])[] = [
  ["Connect on node:http2", (options) => startMacpServer(options)],
  ["@grpc/grpc-js", (options) => startMacpGrpcServer(options)],
];

/** Dev mode (core.md AUTH-6): the bearer value is the agent id. */
export function devAuthenticate(headers: Headers): Caller {
  const authorization = headers.get("authorization");
  if (authorization === null) return { unauthenticated: "missing credentials" };
  if (!authorization.startsWith("Bearer ")) return { unauthenticated: "not a bearer credential" };
  return createDevIdentity(authorization.slice("Bearer ".length));
}

export function newRuntime(limits?: Partial<RuntimeLimits>): MacpRuntime {
  return createRuntime({
    clock: { now: () => Date.now() },
    ...(limits === undefined ? {} : { limits }),
  });
}

export function bearer(agent: string): { authorization: string } {
  return { authorization: `Bearer ${agent}` };
}

export { newSessionId } from "@macp/core/testing";

interface EnvelopeInit {
  readonly sessionId: string;
  readonly sender: string;
  readonly messageType: string;
  readonly payload: Uint8Array;
  readonly messageId?: string;
  readonly mode?: string;
  readonly macpVersion?: string;
}

export function envelope(init: EnvelopeInit): Envelope {
  return create(EnvelopeSchema, {
    macpVersion: init.macpVersion ?? "1.0",
    mode: init.mode ?? DECISION,
    messageType: init.messageType,
    messageId: init.messageId ?? randomUUID(),
    sessionId: init.sessionId,
    sender: init.sender,
    timestampUnixMs: BigInt(Date.now()),
    payload: init.payload,
  });
}

export function sessionStart(
  sessionId: string,
  initiator: string,
  participants: readonly string[],
  ttlMs = 60_000,
): Envelope {
  // A fresh message id per call: a second start of the same session is a conflict, not a duplicate.
  return startEnvelope(sessionId, initiator, {
    messageId: randomUUID(),
    participants: [...participants],
    policyVersion: "policy.default",
    ttlMs,
  });
}

export function proposal(
  sessionId: string,
  sender: string,
  proposalId = "p1",
  supportingData: Uint8Array = new Uint8Array(0),
): Envelope {
  return envelope({
    sessionId,
    sender,
    messageType: "Proposal",
    payload: toBinary(
      decision.ProposalPayloadSchema,
      create(decision.ProposalPayloadSchema, {
        proposalId,
        option: "tuesday",
        rationale: "lowest traffic",
        supportingData,
      }),
    ),
  });
}

export function vote(sessionId: string, sender: string, proposalId = "p1"): Envelope {
  return voteEnvelope(sessionId, sender, "APPROVE", proposalId);
}

export function commitment(sessionId: string, sender: string): Envelope {
  return commitmentEnvelope(sessionId, sender);
}

/** An async iterable the test pushes into: the client side of a streaming request. */
export interface Pushable<T> extends AsyncIterable<T> {
  push(item: T): void;
  close(): void;
}

export function pushable<T>(): Pushable<T> {
  const items: T[] = [];
  let closed = false;
  let wake: (() => void) | undefined;
  return {
    push(item) {
      items.push(item);
      wake?.();
    },
    close() {
      closed = true;
      wake?.();
    },
    async *[Symbol.asyncIterator]() {
      for (;;) {
        const item = items.shift();
        if (item !== undefined) {
          yield item;
          continue;
        }
        if (closed) return;
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
      }
    },
  };
}

/**
 * Pulls from an async iterable only when asked, so a test can read the first
 * items, stop reading, and later see how the stream ended.
 */
export class Reader<T> {
  private readonly iterator: AsyncIterator<T>;
  /** A read in progress; kept across a timeout so no item is lost. */
  private pending: Promise<IteratorResult<T>> | undefined;

  constructor(source: AsyncIterable<T>) {
    this.iterator = source[Symbol.asyncIterator]();
  }

  private pull(): Promise<IteratorResult<T>> {
    if (this.pending === undefined) {
      this.pending = this.iterator.next();
      this.pending.catch(() => {});
    }
    return this.pending;
  }

  /** The next item; fails if the stream ends (or errors) or nothing arrives within `timeoutMs`. */
  async next(timeoutMs = 5000): Promise<T> {
    const result = await withTimeout(this.pull(), timeoutMs, "a stream item");
    this.pending = undefined;
    if (result.done === true) throw new Error("the stream ended");
    return result.value;
  }

  /** True if nothing arrives within `ms`; an item that arrives later is kept for {@link next}. */
  async quietFor(ms: number): Promise<boolean> {
    const pending = this.pull();
    return Promise.race([
      pending.then(
        () => false,
        () => false,
      ),
      sleep(ms).then(() => true),
    ]);
  }

  /** Reads until the stream ends: the items read and the error it ended with, if any. */
  async drain(timeoutMs = 5000): Promise<{ items: T[]; error: unknown }> {
    const items: T[] = [];
    try {
      for (;;) {
        const result = await withTimeout(this.pull(), timeoutMs, "the end of the stream");
        this.pending = undefined;
        if (result.done === true) return { items, error: undefined };
        items.push(result.value);
      }
    } catch (error) {
      this.pending = undefined;
      return { items, error };
    }
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A bare gRPC call over node:http2, for what client libraries hide: this one
 * reads only when asked, so HTTP/2 flow control really stalls the server.
 */
export interface RawGrpcCall {
  /** Sends one length-prefixed message. */
  write(message: Uint8Array): void;
  /** Half-closes the request (a unary call's request ends after its one message). */
  end(): void;
  /** The next response message, reading from the socket only now. */
  next(timeoutMs?: number): Promise<Uint8Array>;
  /** Reads to the end: the remaining messages and the grpc-status trailer. */
  finish(timeoutMs?: number): Promise<{
    messages: Uint8Array[];
    status: number;
    /** grpc-message percent-decoded. */
    message: string;
    /** grpc-message decoded the way @grpc/grpc-js does (decodeURI). */
    rawMessage: string;
  }>;
  close(): void;
}

/** The request headers of a raw gRPC call to `path` over HTTP/2, plus `extra`. */
export function grpcRequestHeaders(
  path: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    ":method": "POST",
    ":path": path,
    "content-type": "application/grpc",
    te: "trailers",
    ...extra,
  };
}

export async function rawGrpcCall(
  baseUrl: string,
  path: string,
  headers: Record<string, string>,
): Promise<RawGrpcCall> {
  const http2 = await import("node:http2");
  const session = http2.connect(baseUrl);
  const stream = session.request(grpcRequestHeaders(path, headers));
  let trailers: Record<string, string | string[] | undefined> = {};
  stream.on("trailers", (received) => {
    trailers = received;
  });
  const chunks = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let buffered = Buffer.alloc(0);
  let ended = false;

  const readMessage = async (): Promise<Uint8Array | undefined> => {
    for (;;) {
      if (buffered.length >= 5) {
        const length = buffered.readUInt32BE(1);
        if (buffered.length >= 5 + length) {
          const message = buffered.subarray(5, 5 + length);
          buffered = buffered.subarray(5 + length);
          return message;
        }
      }
      if (ended) return undefined;
      const chunk = await chunks.next();
      if (chunk.done === true) ended = true;
      else buffered = Buffer.concat([buffered, chunk.value]);
    }
  };

  return {
    write(message) {
      const frame = Buffer.alloc(5 + message.length);
      frame.writeUInt32BE(message.length, 1);
      frame.set(message, 5);
      stream.write(frame);
    },
    end() {
      stream.end();
    },
    async next(timeoutMs = 5000) {
      const message = await withTimeout(readMessage(), timeoutMs, "a response message");
      if (message === undefined) throw new Error("the call ended");
      return message;
    },
    async finish(timeoutMs = 5000) {
      const messages: Uint8Array[] = [];
      for (;;) {
        const message = await withTimeout(readMessage(), timeoutMs, "the end of the call");
        if (message === undefined) break;
        messages.push(message);
      }
      const status = Number(trailers["grpc-status"]);
      const encoded = String(trailers["grpc-message"] ?? "");
      return {
        messages,
        status,
        message: decodeURIComponent(encoded),
        rawMessage: decodeURI(encoded),
      };
    },
    close() {
      stream.close();
      session.close();
    },
  };
}

export interface Http1Answer {
  readonly status: number;
  readonly httpVersion: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  /** Resolves when the server has closed the connection. */
  readonly closed: Promise<void>;
}

/**
 * One HTTP/1.1 request on a connection of its own, as `curl --http1.1` makes
 * it. An `announcedLength` above the body's length leaves the request half-sent.
 */
export async function http1Request(
  url: string,
  init: {
    readonly method?: string;
    readonly headers?: Record<string, string>;
    readonly body?: Uint8Array | string;
    readonly announcedLength?: number;
  },
): Promise<Http1Answer> {
  const http = await import("node:http");
  const body = init.body ?? "";
  const length = typeof body === "string" ? Buffer.byteLength(body) : body.length;
  const announced = init.announcedLength ?? length;
  return new Promise((resolve, reject) => {
    const request = http.request(
      url,
      {
        method: init.method ?? "POST",
        agent: false,
        headers: { ...init.headers, "content-length": announced },
      },
      (response) => {
        const chunks: Buffer[] = [];
        const closed = new Promise<void>((done) => response.socket.once("close", () => done()));
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () =>
          resolve({
            status: response.statusCode ?? 0,
            httpVersion: response.httpVersion,
            headers: response.headers,
            body: Buffer.concat(chunks),
            closed,
          }),
        );
        response.on("error", reject);
      },
    );
    request.on("error", reject);
    if (announced === length) request.end(body);
    else request.write(body);
  });
}
