// MACP_SESSION_DISK_RETENTION_SECS: the file store keeps every session's log
// until the host deletes it, and only the host can tell which sessions are
// over. This tracks the sessions the store holds and deletes the logs of those
// that started more than the retention ago and have already left memory
// (the core evicts only terminal sessions, so an evicted session is over).
// Deleting only evicted sessions keeps a log under any session the runtime
// still serves; a retention shorter than MACP_SESSION_RETENTION_SECS
// therefore acts as that retention.

import type { Clock, MacpRuntime, SessionStore } from "@macp/core";
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
  /** The store to give the runtime: it notes every session it writes or recovers. */
  readonly store: SessionStore;
  /** Learns the start times of recovered sessions; call right after `runtime.recover()`. */
  learnRecovered(runtime: MacpRuntime): void;
  /** Starts the periodic sweep. */
  start(runtime: MacpRuntime): void;
  /** Stops the sweep and waits for one in progress. */
  stop(): Promise<void>;
  /** One sweep now; resolves to the number of sessions deleted. */
  sweep(runtime: MacpRuntime): Promise<number>;
}

export function createDiskRetention(options: DiskRetentionOptions): DiskRetention {
  const { store, clock, retentionMs, intervalMs, logger } = options;
  // Session id → start time (ms); undefined until known.
  const tracked = new Map<string, number | undefined>();
  let timer: ReturnType<typeof setInterval> | undefined;
  let running: Promise<number> | undefined;

  const tracking: SessionStore = {
    append(sessionId, record) {
      // The first record of a session is its SessionStart: now is its start, near enough.
      if (!tracked.has(sessionId)) tracked.set(sessionId, clock.now());
      return store.append(sessionId, record);
    },
    read: (sessionId) => store.read(sessionId),
    async *loadAll() {
      for await (const stored of store.loadAll()) {
        if (!("error" in stored)) tracked.set(stored.sessionId, undefined);
        yield stored;
      }
    },
    delete: (sessionId) => store.delete(sessionId),
    close: () => store.close(),
  };

  const sweep = async (runtime: MacpRuntime): Promise<number> => {
    const cutoff = clock.now() - retentionMs;
    let deleted = 0;
    for (const [sessionId, startedAt] of [...tracked]) {
      const live = runtime.inspectSession(sessionId);
      if (live !== undefined) {
        tracked.set(sessionId, Number(live.metadata.startedAtUnixMs));
        continue;
      }
      if (startedAt === undefined || startedAt >= cutoff) continue;
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
    store: tracking,
    learnRecovered(runtime) {
      for (const sessionId of tracked.keys()) {
        const live = runtime.inspectSession(sessionId);
        if (live !== undefined) tracked.set(sessionId, Number(live.metadata.startedAtUnixMs));
      }
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
