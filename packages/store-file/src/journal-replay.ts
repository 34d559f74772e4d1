import { CHECKPOINT_PARALLELISM, type Checkpointer } from "./checkpointer.js";
import { errorCode } from "./file-system.js";
import { FRAME_OVERHEAD } from "./frame.js";
import { type JournalRecord, scanJournal } from "./journal-format.js";
import type { JournalWriter } from "./journal-writer.js";
import { framesOf, prefixProblem } from "./session-log.js";
import type { SessionRegistry } from "./session-registry.js";
import { forEachConcurrently, type StoreContext } from "./store-context.js";
import { describe, unusable } from "./store-errors.js";
import type { Tombstones } from "./tombstones.js";

/** The parts of the store a journal replay puts records into. */
export interface ReplayTargets {
  readonly context: StoreContext;
  readonly journal: JournalWriter;
  readonly registry: SessionRegistry;
  readonly tombstones: Tombstones;
  readonly checkpointer: Checkpointer;
}

/**
 * Puts the journal's live records back into their session logs: each record
 * names the byte offset of its frame in its log, so the log is kept up to the
 * journal's first record of the session and rewritten from there. Replaying a
 * journal twice writes the same bytes twice. Then a checkpoint makes the logs
 * durable and starts the journal over; if it cannot (a read-only directory), the
 * records stay in the journal and in memory, and reads still see them.
 */
export async function replayJournal(targets: ReplayTargets): Promise<void> {
  const { context, journal, checkpointer } = targets;
  const path = context.journalPath;
  let bytes: Uint8Array;
  try {
    bytes = await context.fs.readFile(path);
  } catch (error) {
    if (errorCode(error) === "ENOENT") return;
    throw unusable(`cannot read the journal ${path}: ${describe(error)}`, error);
  }
  const scan = scanJournal(bytes);
  if (scan.status === "bad") {
    throw unusable(
      `the journal ${path} is damaged (${scan.reason}); it may hold acknowledged records. Restore it, or remove it to start without them.`,
    );
  }
  if (scan.status === "corrupt") {
    throw unusable(
      `the journal ${path} is damaged (${scan.reason}); acknowledged records would be lost. Restore it, or remove it to start without them.`,
    );
  }
  journal.resume(scan.generation, scan.end, scan.nextSeq);
  if (scan.records.length === 0) return;
  const bySession = new Map<string, JournalRecord[]>();
  for (const record of scan.records) {
    const records = bySession.get(record.sessionId);
    if (records) records.push(record);
    else bySession.set(record.sessionId, [record]);
  }
  context.logger.warn("replaying the journal into the session logs", {
    batches: scan.batches,
    records: scan.records.length,
    sessions: bySession.size,
  });
  await forEachConcurrently([...bySession], CHECKPOINT_PARALLELISM, ([sessionId, records]) =>
    replaySession(targets, sessionId, records),
  );
  try {
    await checkpointer.run();
  } catch (error) {
    context.logger.warn("the replayed records stay in the journal until a checkpoint succeeds", {
      error: describe(error),
    });
  }
}

async function replaySession(
  targets: ReplayTargets,
  sessionId: string,
  records: readonly JournalRecord[],
): Promise<void> {
  const { context, registry, checkpointer } = targets;
  if (targets.tombstones.has(sessionId)) return;
  const log = registry.log(sessionId);
  const first = (records[0] as JournalRecord).offset;
  // The log is left exactly as found; the journal's records of the session are
  // saved aside by the next checkpoint, before the journal starts over.
  const quarantine = (reason: string): void => {
    registry.quarantine(log, reason);
    checkpointer.keepAside(
      log,
      first,
      records.map((record) => record.payload),
    );
  };
  let tail = first;
  for (const record of records) {
    if (record.offset !== tail) {
      quarantine(
        `the journal's records of the session are not contiguous (byte ${record.offset}, expected ${tail})`,
      );
      return;
    }
    tail += FRAME_OVERHEAD + record.payload.length;
  }
  let bytes: Uint8Array | undefined;
  try {
    bytes = await context.fs.readFile(log.path);
  } catch (error) {
    if (errorCode(error) !== "ENOENT") {
      quarantine(`cannot read ${log.path}: ${describe(error)}`);
      return;
    }
  }
  if (first === log.headerLength) {
    // The journal holds the whole log: whatever the file holds is rewritten.
    log.state = bytes === undefined ? "absent" : "stale";
    log.end = 0;
  } else {
    const problem = prefixProblem(bytes, sessionId, first);
    if (problem !== undefined) {
      quarantine(problem);
      return;
    }
    log.state = "present";
    log.end = first;
    log.repairPending = bytes?.length !== first;
  }
  log.frames = framesOf(records.map((record) => record.payload));
  log.framesUsed = log.frames.length;
  log.framesCommitted = log.frames.length;
  checkpointer.noteRecords(log, records.length);
}
