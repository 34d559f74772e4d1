import type { Caller, Clock, MacpError, MacpRuntime, SessionStream } from "@macp/core";
import { isAuthenticated } from "@macp/core";
import type { Envelope } from "@macp/proto";

/** An envelope the runtime refused, as the inspector reports it. */
export interface RefusalRecord {
  /** The envelope as the caller sent it; undefined when the request carried none. */
  readonly envelope: Envelope | undefined;
  /** The authenticated caller's sender id; empty when authentication failed. */
  readonly caller: string;
  readonly error: MacpError;
  /** Runtime clock. */
  readonly refusedAtMs: number;
  readonly rpc: "Send" | "StreamSession";
}

export interface RefusalLogOptions {
  /** Runtime clock for `refusedAtMs`. */
  readonly clock: Clock;
  /** How many recent refusals are kept for late watchers. Default 200. */
  readonly capacity?: number;
}

/**
 * The runtime's recent refusals, and live notice of new ones. The core answers
 * a refused envelope to its sender only; this log is what lets an inspector
 * show refusals to someone watching.
 */
export interface RefusalLog {
  record(refusal: RefusalRecord): void;
  /** The kept refusals, oldest first. */
  recent(): readonly RefusalRecord[];
  /** Calls `listener` for every refusal recorded from now on; returns the unsubscribe. */
  follow(listener: (refusal: RefusalRecord) => void): () => void;
  /**
   * The runtime with its refusals recorded here: Send refusals (the NACKs)
   * and the inline errors of StreamSession calls. Everything else passes
   * through untouched.
   */
  observe(runtime: MacpRuntime): MacpRuntime;
}

export function createRefusalLog(options: RefusalLogOptions): RefusalLog {
  const capacity = options.capacity ?? 200;
  const kept: RefusalRecord[] = [];
  const listeners = new Set<(refusal: RefusalRecord) => void>();

  const log: RefusalLog = {
    record(refusal) {
      kept.push(refusal);
      if (kept.length > capacity) kept.shift();
      for (const listener of listeners) listener(refusal);
    },
    recent: () => [...kept],
    follow(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    observe: (runtime) => observeRefusals(runtime, log, options.clock),
  };
  return log;
}

type SendLike = (
  envelope: Envelope | undefined,
  caller: Caller,
) => { isErr(): boolean } | Promise<{ isErr(): boolean }>;

/**
 * A proxy rather than a full wrapper object: only the send methods and
 * openSessionStream are intercepted, so the runtime's interface can grow or
 * shrink (a synchronous send variant, new RPCs) without touching this.
 */
function observeRefusals(runtime: MacpRuntime, log: RefusalLog, clock: Clock): MacpRuntime {
  const callerName = (caller: Caller): string => (isAuthenticated(caller) ? caller.sender : "");
  const recordSendResult = (
    result: { isErr(): boolean },
    envelope: Envelope | undefined,
    caller: Caller,
  ): void => {
    if (!result.isErr()) return;
    const error = (result as unknown as { error: MacpError }).error;
    log.record({
      envelope,
      caller: callerName(caller),
      error,
      refusedAtMs: clock.now(),
      rpc: "Send",
    });
  };
  const wrapSend = (send: SendLike): SendLike => {
    return (envelope, caller) => {
      const result = send(envelope, caller);
      if (result instanceof Promise) {
        return result.then((settled) => {
          recordSendResult(settled, envelope, caller);
          return settled;
        });
      }
      recordSendResult(result, envelope, caller);
      return result;
    };
  };
  const openSessionStream: MacpRuntime["openSessionStream"] = (caller, signal) =>
    runtime
      .openSessionStream(caller, signal)
      .map((stream) => watchStream(stream, callerName(caller), log, clock));

  return new Proxy(runtime, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property);
      if (typeof value !== "function") return value;
      if (property === "openSessionStream") return openSessionStream;
      const bound = value.bind(target);
      return property === "send" || property === "sendNow" ? wrapSend(bound as SendLike) : bound;
    },
  });
}

const RECENT_FRAMES = 256;

/** Records the inline errors of a StreamSession call, matching each to the envelope it answers. */
function watchStream(
  stream: SessionStream,
  caller: string,
  log: RefusalLog,
  clock: Clock,
): SessionStream {
  // Inline errors name the refused message_id; the client's recent envelopes
  // are kept by id (bounded: the reader may lag behind the frames).
  const sent = new Map<string, Envelope>();
  return {
    push(frame) {
      if (frame.envelope !== undefined) {
        sent.set(frame.envelope.messageId, frame.envelope);
        if (sent.size > RECENT_FRAMES) sent.delete(sent.keys().next().value as string);
      }
      return stream.push(frame);
    },
    end: () => stream.end(),
    outputs: {
      async *[Symbol.asyncIterator]() {
        for await (const output of stream.outputs) {
          if (output.kind === "error" && output.messageId !== "") {
            log.record({
              envelope: sent.get(output.messageId),
              caller,
              error: output.error,
              refusedAtMs: clock.now(),
              rpc: "StreamSession",
            });
          }
          yield output;
        }
      },
    },
  };
}
