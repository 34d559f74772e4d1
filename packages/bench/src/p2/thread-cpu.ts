// The CPU time of a process split between its main thread (where JavaScript,
// and so the request path, runs) and its other threads (V8's garbage collector
// and compiler helpers, libuv's pool). A CPU profile samples the main thread
// only; on a machine with few cores the helpers' share can be large and
// differs from process to process, so P2 reports both.

import { readdir, readFile } from "node:fs/promises";

/** CPU time used so far by each live thread of one process, µs by thread id. */
export interface ThreadCpuSnapshot {
  readonly pid: number;
  readonly threads: ReadonlyMap<number, number>;
}

/** CPU time used between two snapshots. */
export interface ThreadCpu {
  /** By the main thread (the thread whose id is the process id), µs. */
  readonly mainMicros: number;
  /** By every other thread, µs. */
  readonly otherMicros: number;
}

/**
 * Reads the CPU time each thread of `pid` has used so far, from Linux's
 * `/proc/<pid>/task/<tid>/schedstat` (nanoseconds on a CPU, user and system
 * alike). Undefined where there is no such file: not Linux, or the process
 * is gone.
 */
export async function readThreadCpu(pid: number): Promise<ThreadCpuSnapshot | undefined> {
  let tids: string[];
  try {
    tids = await readdir(`/proc/${pid}/task`);
  } catch {
    return undefined;
  }
  const threads = new Map<number, number>();
  for (const tid of tids) {
    let text: string;
    try {
      text = await readFile(`/proc/${pid}/task/${tid}/schedstat`, "utf8");
    } catch {
      continue; // the thread ended while being read
    }
    const nanos = Number(text.split(" ")[0]);
    if (Number.isFinite(nanos)) threads.set(Number(tid), nanos / 1000);
  }
  return threads.has(pid) ? { pid, threads } : undefined;
}

/**
 * What each part used from `before` to `after`; undefined when either is
 * missing or they are of different processes. A thread that started in
 * between counts in full; one that ended in between is not seen (V8's and
 * libuv's helper threads live as long as the process).
 */
export function threadCpuBetween(
  before: ThreadCpuSnapshot | undefined,
  after: ThreadCpuSnapshot | undefined,
): ThreadCpu | undefined {
  if (before === undefined || after === undefined || before.pid !== after.pid) return undefined;
  let mainMicros = 0;
  let otherMicros = 0;
  for (const [tid, micros] of after.threads) {
    const used = micros - (before.threads.get(tid) ?? 0);
    if (tid === after.pid) mainMicros = used;
    else otherMicros += used;
  }
  return { mainMicros, otherMicros };
}
