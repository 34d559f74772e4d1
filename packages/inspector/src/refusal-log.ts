import type { Caller, Clock, MacpError, RuntimeObserver } from "@macp/core";
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
   * Records the runtime's refusals here: Send refusals (the NACKs) and the
   * inline errors of StreamSession calls. Pass it to `createRuntime({ observer })`
   * (with `composeObservers` next to other observers).
   */
  readonly observer: RuntimeObserver;
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
    observer: {
      sendSettled(envelope, outcome, caller) {
        if (outcome.isOk()) return;
        log.record({
          envelope,
          caller: callerName(caller),
          error: outcome.error,
          refusedAtMs: options.clock.now(),
          rpc: "Send",
        });
      },
      streamRefused(envelope, error, caller) {
        log.record({
          envelope,
          caller: caller.sender,
          error,
          refusedAtMs: options.clock.now(),
          rpc: "StreamSession",
        });
      },
    },
  };
  return log;
}

function callerName(caller: Caller): string {
  return isAuthenticated(caller) ? caller.sender : "";
}
