// MACP_SESSION_DISK_RETENTION_SECS: the file store keeps every session's log
// until the host deletes it, and only the host can tell which sessions are
// over. This tracks the sessions the runtime loads (through its observer hook:
// started live or rebuilt by recovery) and deletes the logs of those
// that started more than the retention ago and have already left memory
// (the core evicts only terminal sessions, so an evicted session is over).
// Deleting only evicted sessions keeps a log under any session the runtime
// still serves; a retention shorter than MACP_SESSION_RETENTION_SECS
// therefore acts as that retention.

import type { Clock, MacpRuntime, RuntimeObserver } from "@macp/core";
import type { FileStore } from "@macp/store-file";
import type { Logger } from "./logger.js";

export interface DiskRetentionOptions {
  readonly store: FileStore;
  readonly clock: Clock;
  /** Delete logs of sessions that started longer ago than this. */
  readonly retentionMs: number;
  /** How often to look. */
  readonly intervalMs: number;
  readonly logger: Logger;
}

export interface DiskRetention {
  /** Give it to `createRuntime({ observer })`: it notes every session the runtime loads. */
  readonly observer: RuntimeObserver;
  /** Starts the periodic sweep. */
  start(runtime: MacpRuntime): void;
  /** Stops the sweep and waits for one in progress. */
  stop(): Promise<void>;
  /** One sweep now; resolves to the number of sessions deleted. */
  sweep(runtime: MacpRuntime): Promise<number>;
}

export function createDiskRetention(options: DiskRetentionOptions): DiskRetention {
  const { store, clock, retentionMs, intervalMs, logger } = options;
  // Session id → start time (ms).
  const tracked = new Map<string, number>();
  let timer: ReturnType<typeof setInterval> | undefined;
  let running: Promise<number> | undefined;

  const sweep = async (runtime: MacpRuntime): Promise<number> => {
    const cutoff = clock.now() - retentionMs;
    let deleted = 0;
    for (const [sessionId, startedAt] of [...tracked]) {
      const live = runtime.inspectSession(sessionId);
      if (live !== undefined) {
        tracked.set(sessionId, Number(live.metadata.startedAtUnixMs));
        continue;
      }
      if (startedAt >= cutoff) continue;
      try {
        await store.delete(sessionId);
        tracked.delete(sessionId);
        deleted++;
      } catch (error) {
        logger.warn({ err: error, sessionId }, "disk GC could not delete a session log");
      }
    }
    if (deleted > 0) logger.info({ deleted }, "disk GC removed terminal sessions");
    return deleted;
  };

  return {
    observer: {
      sessionLoaded(sessionId, startedAtMs) {
        tracked.set(sessionId, startedAtMs);
      },
    },
    start(runtime) {
      timer = setInterval(() => {
        if (running !== undefined) return;
        running = sweep(runtime).finally(() => {
          running = undefined;
        });
      }, intervalMs);
      timer.unref();
    },
    async stop() {
      if (timer !== undefined) clearInterval(timer);
      await running;
    },
    sweep,
  };
}
