import type { Ack, Envelope } from "@macp/proto";
import type { Result } from "neverthrow";
import type { MacpError } from "./errors.js";
import type { Caller, Identity } from "./identity.js";

/** The server-streaming RPCs, as named on the wire. */
export type StreamRpc =
  | "StreamSession"
  | "WatchSessions"
  | "WatchSignals"
  | "WatchModeRegistry"
  | "WatchRoots"
  | "WatchPolicies";

/** The session-control RPCs. */
export type ControlOperation = "cancel" | "suspend" | "resume";

/**
 * Hooks the runtime calls as things happen, for metrics, tracing and storage
 * housekeeping (`createRuntime({ observer })`). Every hook is optional, runs
 * synchronously on the path that caused it and must not throw; keep it cheap.
 */
export interface RuntimeObserver {
  /** A Send call answered (Send RPC only; StreamSession frames are counted by {@link streamFrame}). */
  sendSettled?(
    envelope: Envelope | undefined,
    outcome: Result<Ack, MacpError>,
    caller: Caller,
  ): void;
  /** A CancelSession, SuspendSession or ResumeSession call answered. */
  controlSettled?(operation: ControlOperation, outcome: Result<Ack, MacpError>): void;
  /** A server stream was opened for a caller. */
  streamOpened?(rpc: StreamRpc): void;
  /** A server stream ended, for whatever reason (end of call, abort, lag, shutdown). */
  streamClosed?(rpc: StreamRpc): void;
  /** A StreamSession request frame arrived. */
  streamFrame?(kind: "envelope" | "subscribe"): void;
  /** A StreamSession envelope was refused with an inline error; the stream goes on. */
  streamRefused?(envelope: Envelope, error: MacpError, caller: Identity): void;
  /**
   * A session is in memory: accepted live, or rebuilt by recovery. A session
   * recovery finds already over and past its memory retention is reported
   * loaded, then evicted at once.
   */
  sessionLoaded?(sessionId: string, startedAtMs: number): void;
  /** A terminal session left memory (its log stays in the store). */
  sessionEvicted?(sessionId: string): void;
}

/** One observer that calls each given observer's hooks in order (undefined entries are skipped). */
export function composeObservers(...observers: (RuntimeObserver | undefined)[]): RuntimeObserver {
  const present = observers.filter((observer) => observer !== undefined);
  const hook = <K extends keyof RuntimeObserver>(name: K): RuntimeObserver[K] => {
    const hooks = present.filter((observer) => observer[name] !== undefined);
    if (hooks.length === 0) return undefined;
    return ((...args: unknown[]) => {
      for (const observer of hooks)
        (observer[name] as (...a: unknown[]) => void).apply(observer, args);
    }) as RuntimeObserver[K];
  };
  return {
    sendSettled: hook("sendSettled"),
    controlSettled: hook("controlSettled"),
    streamOpened: hook("streamOpened"),
    streamClosed: hook("streamClosed"),
    streamFrame: hook("streamFrame"),
    streamRefused: hook("streamRefused"),
    sessionLoaded: hook("sessionLoaded"),
    sessionEvicted: hook("sessionEvicted"),
  };
}
