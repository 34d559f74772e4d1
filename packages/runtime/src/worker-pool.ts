import cluster, { type Worker } from "node:cluster";
import { createClusterMetrics } from "./cluster-metrics.js";
import { formatAddress, type MetricsAddress } from "./config.js";
import type { Logger } from "./logger.js";
import { startMetricsServer } from "./metrics.js";

/** How long the primary waits for workers to drain on SIGTERM before it stops them. */
const STOP_GRACE_MS = 30_000;
/** A worker that dies sooner than this after its start is not restarted (a broken configuration). */
const MIN_UPTIME_MS = 5_000;

/**
 * MACP_WORKERS=N: the primary process forks N copies of the server, which
 * share the listening port (node:cluster hands out connections), and restarts
 * any that crash. Every worker is a full instance over the shared PostgreSQL
 * store, so they behave as one runtime. SIGTERM and SIGINT are passed on, and
 * the primary exits when the last worker has. With `metrics`, the primary
 * serves the endpoint and every scrape merges the live workers' metrics.
 */
export async function runWorkerPool(
  count: number,
  log: (message: string) => void,
  metrics?: { readonly address: MetricsAddress; readonly logger: Logger },
): Promise<number> {
  const metricsServer =
    metrics === undefined
      ? undefined
      : await startMetricsServer(createClusterMetrics(), metrics.address, metrics.logger);
  if (metricsServer !== undefined) {
    metrics?.logger.info(
      { metrics: formatAddress(metricsServer.address) },
      "serving metrics for every worker",
    );
  }
  const code = await new Promise<number>((resolve) => {
    let stopping = false;
    const startedAt = new Map<Worker, number>();
    const fork = () => startedAt.set(cluster.fork(), Date.now());
    for (let i = 0; i < count; i++) fork();
    cluster.on("exit", (worker, code, signal) => {
      const uptime = Date.now() - (startedAt.get(worker) ?? 0);
      startedAt.delete(worker);
      if (stopping) {
        if (startedAt.size === 0) resolve(0);
        return;
      }
      log(`worker ${worker.process.pid} exited (${signal ?? code})`);
      if (uptime < MIN_UPTIME_MS) {
        log("a worker failed at start-up; stopping");
        stop();
        if (startedAt.size === 0) resolve(1);
        return;
      }
      fork();
    });
    const stop = () => {
      if (stopping) return;
      stopping = true;
      for (const worker of startedAt.keys()) worker.process.kill("SIGTERM");
      setTimeout(() => {
        for (const worker of startedAt.keys()) worker.process.kill("SIGKILL");
      }, STOP_GRACE_MS).unref();
    };
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);
  });
  await metricsServer?.close();
  return code;
}
