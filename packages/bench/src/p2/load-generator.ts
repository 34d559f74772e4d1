// The P2 load generator, a child process so its CPU never counts as the
// server's: `callers` concurrent agents, each sending one Send at a time over
// @grpc/grpc-js (the transport of the TypeScript SDK), spread over
// `connections` HTTP/2 connections. The orchestrator decides when the
// measured window begins and ends, and may pause the load in between (every
// caller finishes its call in flight, then waits) so that several servers can
// take turns within one window.

import { randomUUID } from "node:crypto";
import { fromBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { SendResponseSchema } from "@macp/proto";
import {
  type FromLoadGenerator,
  type LoadConfig,
  type LoadResult,
  SEND_PATH,
  senderId,
  sessionStartRequest,
  type ToLoadGenerator,
  trafficRequest,
} from "./wire.js";

function report(message: FromLoadGenerator): void {
  process.send?.(message);
}

const identity = (bytes: Buffer): Buffer => bytes;

type Outcome = "accepted" | "refused" | "failed";

function unary(
  client: grpc.Client,
  request: Uint8Array,
  metadata: grpc.Metadata,
): Promise<{ outcome: Outcome; problem?: string }> {
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      SEND_PATH,
      identity,
      identity,
      Buffer.from(request.buffer, request.byteOffset, request.byteLength),
      metadata,
      (error, response) => {
        if (error !== null || response === undefined) {
          resolve({ outcome: "failed", problem: error?.message ?? "no response" });
          return;
        }
        const ack = fromBinary(SendResponseSchema, response).ack;
        if (ack?.ok === true) resolve({ outcome: "accepted" });
        else resolve({ outcome: "refused", problem: ack?.error?.code ?? "no ack" });
      },
    );
  });
}

function percentile(sorted: readonly number[], fraction: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))] ?? 0;
}

async function run(config: LoadConfig): Promise<void> {
  const clients = Array.from(
    { length: config.connections },
    // A local subchannel pool gives each client its own connection.
    () =>
      new grpc.Client(config.address, grpc.credentials.createInsecure(), {
        "grpc.use_local_subchannel_pool": 1,
      }),
  );
  const metadataOf = (caller: number): grpc.Metadata => {
    const metadata = new grpc.Metadata();
    metadata.set("authorization", `Bearer ${senderId(caller)}`);
    return metadata;
  };

  const sessionIds = Array.from({ length: config.sessions }, () => randomUUID());
  const starter = metadataOf(0);
  for (const [index, sessionId] of sessionIds.entries()) {
    const client = clients[index % clients.length] as grpc.Client;
    const started = await unary(client, sessionStartRequest(sessionId, config.callers), starter);
    if (started.outcome !== "accepted") {
      report({ type: "error", message: `SessionStart failed: ${started.problem ?? ""}` });
      process.exit(1);
    }
  }

  let measuring = false;
  let stopping = false;
  let calls = 0;
  let accepted = 0;
  let refused = 0;
  let failed = 0;
  let firstProblem: string | undefined;
  let latencies: number[] = [];
  // Load time inside the window: the running stretches only, each from its
  // start (or resume) until the last call in flight has come back.
  let elapsedMs = 0;
  let runningSince: number | undefined = config.startPaused === true ? undefined : 0;

  // Paused: callers wait at the gate; the last to arrive reports "paused".
  let gate: { readonly opened: Promise<void>; open(): void; waiting: number } | undefined;
  const closeGate = () => {
    let open = () => {};
    const opened = new Promise<void>((resolve) => {
      open = resolve;
    });
    gate = { opened, open, waiting: 0 };
  };
  const openGate = () => {
    const current = gate;
    gate = undefined;
    current?.open();
  };
  const reportPausedOnceIdle = () => {
    if (gate === undefined || gate.waiting < config.callers) return;
    if (runningSince !== undefined && measuring) elapsedMs += performance.now() - runningSince;
    runningSince = undefined;
    report({ type: "paused" });
  };
  if (config.startPaused === true) closeGate();

  const caller = async (index: number): Promise<void> => {
    const client = clients[index % clients.length] as grpc.Client;
    const metadata = metadataOf(index);
    for (let k = 0; !stopping; k++) {
      if (gate !== undefined) {
        const current = gate;
        current.waiting++;
        reportPausedOnceIdle();
        await current.opened;
        if (stopping) return;
      }
      const request = trafficRequest(index, k, sessionIds);
      const started = performance.now();
      const result = await unary(client, request, metadata);
      if (!measuring) continue;
      latencies.push(performance.now() - started);
      calls++;
      if (result.outcome === "accepted") accepted++;
      else if (result.outcome === "refused") refused++;
      else failed++;
      if (result.problem !== undefined) firstProblem ??= result.problem;
    }
  };
  const running = Promise.all(Array.from({ length: config.callers }, (_, index) => caller(index)));
  report({ type: "ready" });

  process.on("message", (message: ToLoadGenerator) => {
    if (message.type === "begin") {
      measuring = true;
      elapsedMs = 0;
      if (runningSince !== undefined) runningSince = performance.now();
      calls = accepted = refused = failed = 0;
      latencies = [];
    } else if (message.type === "pause") {
      if (gate === undefined) closeGate();
      reportPausedOnceIdle();
    } else if (message.type === "resume") {
      if (gate === undefined) return;
      runningSince = performance.now();
      openGate();
    } else if (message.type === "end") {
      if (runningSince !== undefined) elapsedMs += performance.now() - runningSince;
      runningSince = undefined;
      measuring = false;
      const sorted = latencies.sort((a, b) => a - b);
      const result: LoadResult = {
        calls,
        accepted,
        refused,
        failed,
        elapsedMs,
        p50Ms: percentile(sorted, 0.5),
        p99Ms: percentile(sorted, 0.99),
        firstProblem,
      };
      report({ type: "result", result });
    } else if (message.type === "stop") {
      stopping = true;
      openGate();
      void running.finally(() => {
        for (const client of clients) client.close();
        process.exit(0);
      });
    }
  });
}

process.once("message", (message: ToLoadGenerator) => {
  if (message.type !== "config") return;
  run(message.config).catch((error: unknown) => {
    report({ type: "error", message: error instanceof Error ? error.message : String(error) });
    process.exit(1);
  });
});
