import type { Clock, MacpRuntime, RuntimeLogger } from "@macp/core";

export interface TimerDriverOptions {
  /** Must be the clock the runtime was created with: deadlines are in its time. Default: the wall clock. */
  readonly clock?: Clock;
  /**
   * Longest sleep between looks at `runtime.nextDeadline()`. A session started
   * while the driver sleeps may have an earlier deadline than the one it slept
   * towards; this bounds how late that deadline is served. Default 1000 ms.
   */
  readonly maxSleepMs?: number;
  /**
   * `processDueWork()` also runs at least this often even when no deadline is
   * due, so eviction of old terminal sessions never waits on a deadline
   * (MACP_CLEANUP_INTERVAL_SECS). Default 60 000 ms.
   */
  readonly cleanupIntervalMs?: number;
  /** Where a failing `processDueWork()` is reported; the driver keeps running. Default: console. */
  readonly logger?: Pick<RuntimeLogger, "error">;
}

export interface TimerDriver {
  /** Stops the loop and waits for a `processDueWork()` in progress to finish. */
  stop(): Promise<void>;
}

const wallClock: Clock = { now: () => Date.now() };

// After a run that left its deadline already due, wait this long before the
// next one, so a runtime that cannot clear a deadline does not spin the CPU.
const MIN_RERUN_MS = 10;

/**
 * Drives the runtime's time-based work (TTL expiry, suspension caps, due mode
 * messages, eviction) with real timers: sleeps until `runtime.nextDeadline()`
 * (at most `maxSleepMs`) and calls `runtime.processDueWork()` when a deadline
 * is due or the cleanup interval has passed. The core never sets timers
 * itself, so a host that embeds the runtime runs one of these (startMacpServer
 * does it for you). The timers are unref'd: they never keep the process alive.
 */
export function startTimerDriver(
  runtime: MacpRuntime,
  options: TimerDriverOptions = {},
): TimerDriver {
  const clock = options.clock ?? wallClock;
  const maxSleepMs = options.maxSleepMs ?? 1000;
  const cleanupIntervalMs = options.cleanupIntervalMs ?? 60_000;
  const logger = options.logger ?? console;

  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let running: Promise<void> | undefined;
  let lastRun = clock.now();

  const schedule = (justRan: boolean): void => {
    if (stopped) return;
    const now = clock.now();
    const deadline = runtime.nextDeadline();
    const untilDeadline = deadline === undefined ? Number.POSITIVE_INFINITY : deadline - now;
    const untilCleanup = lastRun + cleanupIntervalMs - now;
    const delay = Math.max(
      justRan ? MIN_RERUN_MS : 0,
      Math.min(untilDeadline, untilCleanup, maxSleepMs),
    );
    timer = setTimeout(tick, delay);
    timer.unref();
  };

  const tick = (): void => {
    timer = undefined;
    if (stopped) return;
    const now = clock.now();
    const deadline = runtime.nextDeadline();
    const due = deadline !== undefined && deadline <= now;
    if (!due && now - lastRun < cleanupIntervalMs) {
      schedule(false);
      return;
    }
    lastRun = now;
    running = runtime
      .processDueWork()
      .catch((error: unknown) => {
        logger.error("processing due work failed", { error });
      })
      .finally(() => {
        running = undefined;
        schedule(true);
      });
  };

  schedule(false);
  return {
    async stop() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      await running;
    },
  };
}
