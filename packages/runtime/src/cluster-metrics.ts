// MACP_WORKERS with MACP_METRICS_ADDR: the primary serves the endpoint, asks
// every worker for its metrics over the node:cluster IPC channel at each
// scrape, and merges them with prom-client's AggregatorRegistry. Workers do
// not bind the address.

import cluster, { type Worker } from "node:cluster";
import { type Aggregator, AggregatorRegistry, Gauge, Registry } from "prom-client";
import type { RuntimeMetrics } from "./metrics.js";

const REQUEST = "macp:metrics-request";
const RESPONSE = "macp:metrics-response";
/** A worker that has not answered by then is left out of the scrape. */
const WORKER_TIMEOUT_MS = 5_000;

/**
 * How each metric is merged where summing the workers' values would be wrong
 * (everything else is summed, or merged as prom-client declares it: event-loop
 * lag averaged, its min and max kept, the Node.js version taken from one).
 */
const AGGREGATORS: Readonly<Record<string, Aggregator>> = {
  // Every worker holds a replica of the sessions it has loaded, and every
  // worker recovers the same shared log: the largest count, not the sum.
  macp_sessions: "max",
  macp_recovered_sessions: "max",
  macp_quarantined_sessions: "max",
  // A per-process limit, and the oldest worker's start.
  process_max_fds: "min",
  process_start_time_seconds: "min",
};

interface MetricsRequest {
  readonly type: typeof REQUEST;
  readonly id: number;
}

interface MetricsResponse {
  readonly type: typeof RESPONSE;
  readonly id: number;
  readonly metrics: object[];
}

function isResponse(message: unknown, id: number): message is MetricsResponse {
  const candidate = message as Partial<MetricsResponse> | null;
  return candidate?.type === RESPONSE && candidate.id === id && Array.isArray(candidate.metrics);
}

/** In a worker: answers the primary's metrics requests from `registry`. Returns what stops it. */
export function answerMetricsRequests(registry: Registry): () => void {
  const listener = (message: unknown): void => {
    const request = message as Partial<MetricsRequest> | null;
    if (request?.type !== REQUEST || typeof request.id !== "number") return;
    const id = request.id;
    void registry.getMetricsAsJSON().then(
      (metrics) => process.send?.({ type: RESPONSE, id, metrics } satisfies MetricsResponse),
      () => process.send?.({ type: RESPONSE, id, metrics: [] } satisfies MetricsResponse),
    );
  };
  process.on("message", listener);
  return () => process.off("message", listener);
}

/**
 * In the primary: metrics that render every live worker's metrics merged into
 * one exposition, plus `macp_workers` (how many workers the scrape includes).
 * A worker that exits, or does not answer in time, is left out.
 */
export function createClusterMetrics(): Pick<RuntimeMetrics, "registry" | "render"> {
  const registry = new Registry();
  const reporting = new Gauge({
    name: "macp_workers",
    help: "Worker processes whose metrics this scrape includes",
    registers: [registry],
  });
  let nextId = 0;
  return {
    registry,
    async render() {
      const workers = Object.values(cluster.workers ?? {}).filter(
        (worker): worker is Worker => worker?.isConnected() === true,
      );
      const answers = await Promise.all(workers.map((worker) => askWorker(worker, ++nextId)));
      const received = answers.filter((metrics) => metrics !== undefined);
      reporting.set(received.length);
      const merged = [...received.map(withAggregators), await registry.getMetricsAsJSON()];
      return AggregatorRegistry.aggregate(merged).metrics();
    },
  };
}

function withAggregators(metrics: object[]): object[] {
  return metrics.map((metric) => {
    const aggregator = AGGREGATORS[(metric as { name?: string }).name ?? ""];
    return aggregator === undefined ? metric : { ...metric, aggregator };
  });
}

function askWorker(worker: Worker, id: number): Promise<object[] | undefined> {
  return new Promise((resolve) => {
    const finish = (metrics: object[] | undefined): void => {
      clearTimeout(timer);
      worker.off("message", onMessage);
      worker.off("exit", onGone);
      worker.off("disconnect", onGone);
      resolve(metrics);
    };
    const onMessage = (message: unknown): void => {
      if (isResponse(message, id)) finish(message.metrics);
    };
    const onGone = (): void => finish(undefined);
    const timer = setTimeout(onGone, WORKER_TIMEOUT_MS);
    worker.on("message", onMessage);
    worker.on("exit", onGone);
    worker.on("disconnect", onGone);
    try {
      worker.send({ type: REQUEST, id } satisfies MetricsRequest, (error: Error | null) => {
        if (error !== null) onGone();
      });
    } catch {
      // The channel closed between the check and the send.
      onGone();
    }
  });
}
