// Heap kept per evicted session: whole decision sessions run to RESOLVED through
// the kernel, then evicted, and the heap is measured after a full GC. Run on the
// file store (with its log files kept on disk, the default) and, for reference,
// on the memory store, which keeps nothing of an evicted session but its reserved
// id. Not part of `npm run bench`:
//
//   npm run build && node --expose-gc packages/bench/dist/evicted-memory.js [sessions] [file|memory]
//
// (20,000 sessions and both stores by default; each store in its own process
// gives steadier figures.)
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createMemoryStore, createRuntime, type SessionStore } from "@macp/core";
import { createFileStore, type FileStore } from "@macp/store-file";
import { decisionLifecycle, sessionIdFor, UNLIMITED } from "./traffic.js";

/** Sessions run at once, so that their appends share the file store's fsyncs. */
const CONCURRENCY = 256;

interface EvictedMemoryResult {
  readonly store: "file" | "memory";
  readonly sessions: number;
  readonly bytesPerEvictedSession: number;
  /** The file store's count of logs it still tracks in memory (undefined if it has none). */
  readonly cachedSessions: number | undefined;
  /** File store: heap per session after a restart whose recovery found them all evictable. */
  readonly bytesPerRecoveredSession: number | undefined;
  readonly cachedSessionsAfterRecovery: number | undefined;
}

function collectGarbage(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error("run with node --expose-gc");
  gc();
  gc();
}

async function measureEvictedMemory(
  kind: "file" | "memory",
  sessions: number,
): Promise<EvictedMemoryResult> {
  const directory = await mkdtemp(join(tmpdir(), "macp-evicted-memory-"));
  let now = 1_750_000_000_000;
  const store: SessionStore =
    kind === "file" ? createFileStore({ directory }) : createMemoryStore();
  const runtime = createRuntime({
    clock: { now: () => now },
    store,
    limits: { ...UNLIMITED, sessionRetentionMs: 0 },
  });
  await runtime.recover();
  // Warm up the code paths and the file store's journal before the baseline.
  await runSessions(runtime, 0, CONCURRENCY);
  now += 1;
  await runtime.processDueWork();
  if (kind === "file") await (store as FileStore).checkpoint();
  collectGarbage();
  const before = process.memoryUsage().heapUsed;

  await runSessions(runtime, CONCURRENCY, sessions);
  now += 1;
  await runtime.processDueWork();
  if (runtime.inspectSession(sessionIdFor(CONCURRENCY)) !== undefined) {
    throw new Error("the sessions were not evicted");
  }
  if (kind === "file") await (store as FileStore).checkpoint();
  collectGarbage();
  const after = process.memoryUsage().heapUsed;
  const cachedSessions = kind === "file" ? cachedSessionsOf(store as FileStore) : undefined;
  await runtime.close();
  await store.close();
  const recovered =
    kind === "file" ? await measureRecovery(directory, now, sessions + CONCURRENCY) : undefined;
  await rm(directory, { recursive: true, force: true });
  return {
    store: kind,
    sessions,
    bytesPerEvictedSession: (after - before) / sessions,
    cachedSessions,
    bytesPerRecoveredSession: recovered?.bytesPerSession,
    cachedSessionsAfterRecovery: recovered?.cachedSessions,
  };
}

// Undefined on a store without the count (before it existed).
function cachedSessionsOf(store: FileStore): number | undefined {
  return (store.stats() as { cachedSessions?: number }).cachedSessions;
}

/** Restarts on the directory: every session found is terminal and past its retention. */
async function measureRecovery(
  directory: string,
  now: number,
  sessions: number,
): Promise<{ bytesPerSession: number; cachedSessions: number | undefined }> {
  collectGarbage();
  const before = process.memoryUsage().heapUsed;
  const store = createFileStore({ directory });
  const runtime = createRuntime({
    clock: { now: () => now },
    store,
    limits: { ...UNLIMITED, sessionRetentionMs: 0 },
  });
  await runtime.recover();
  await store.checkpoint();
  collectGarbage();
  const after = process.memoryUsage().heapUsed;
  const cachedSessions = cachedSessionsOf(store);
  await runtime.close();
  await store.close();
  return { bytesPerSession: (after - before) / sessions, cachedSessions };
}

async function runSessions(
  runtime: ReturnType<typeof createRuntime>,
  offset: number,
  count: number,
): Promise<void> {
  let next = offset;
  const end = offset + count;
  const worker = async (): Promise<void> => {
    while (next < end) {
      const sessionId = sessionIdFor(next++);
      for (const { envelope, as } of decisionLifecycle(sessionId)) {
        const sent = await runtime.send(envelope, as);
        if (sent.isErr()) throw new Error(`${envelope.messageType} refused: ${sent.error.code}`);
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
}

async function main(): Promise<void> {
  const sessions = Number(process.argv[2] ?? 20_000);
  const only = process.argv[3];
  const kinds = (["file", "memory"] as const).filter((kind) => only === undefined || only === kind);
  for (const kind of kinds) {
    const result = await measureEvictedMemory(kind, sessions);
    console.log(
      `${kind} store: ${result.sessions} sessions resolved and evicted, ` +
        `${result.bytesPerEvictedSession.toFixed(0)} heap bytes per evicted session` +
        (kind === "file" ? `, logs tracked in memory: ${result.cachedSessions ?? "n/a"}` : ""),
    );
    if (result.bytesPerRecoveredSession !== undefined) {
      console.log(
        `file store after a restart that found them all evictable: ` +
          `${result.bytesPerRecoveredSession.toFixed(0)} heap bytes per session, ` +
          `logs tracked in memory: ${result.cachedSessionsAfterRecovery ?? "n/a"}`,
      );
    }
  }
}

await main();
