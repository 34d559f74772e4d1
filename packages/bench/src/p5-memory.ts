// P5: heap bytes per idle open session with 100,000 sessions open.
import { createMemoryStore, createRuntime, type MacpRuntime } from "@macp/core";
import { startIdleSessions, UNLIMITED } from "./traffic.js";

export interface P5Result {
  readonly sessions: number;
  readonly bytesPerSession: number;
  /** False when the process was started without --expose-gc (figures are then noisier). */
  readonly gcExposed: boolean;
}

const SESSIONS = 100_000;

function collect(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    gc();
    gc();
  }
}

export async function runP5(): Promise<P5Result> {
  collect();
  const before = process.memoryUsage().heapUsed;
  const runtime: MacpRuntime = createRuntime({
    clock: { now: () => 1_750_000_000_000 },
    store: createMemoryStore(),
    limits: UNLIMITED,
  });
  await startIdleSessions(runtime, SESSIONS);
  collect();
  const after = process.memoryUsage().heapUsed;
  // Keep the runtime alive until after the measurement.
  if (runtime.inspectSession("00000000-0000-4000-8000-000000000000") === undefined) {
    throw new Error("sessions were not created");
  }
  return {
    sessions: SESSIONS,
    bytesPerSession: (after - before) / SESSIONS,
    gcExposed: typeof (globalThis as { gc?: unknown }).gc === "function",
  };
}
