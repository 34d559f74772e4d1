import type { Checkpointer } from "./checkpointer.js";
import { FileStoreError } from "./file-store-error.js";
import { FRAME_OVERHEAD } from "./frame.js";
import { batchFrameSize, encodeBatch, type JournalEntry } from "./journal-format.js";
import type { JournalWriter } from "./journal-writer.js";
import { appendFrame, logBase, type SessionLog } from "./session-log.js";
import type { StoreContext } from "./store-context.js";
import { describe } from "./store-errors.js";

/** Most journal bytes one batch takes (a single larger record still goes alone). */
const MAX_BATCH_BYTES = 4 * 1024 * 1024;
/** With checkpoints failing, the journal grows to this many times its size before appends are refused. */
const JOURNAL_GROWTH_LIMIT = 4;
/** Batch buffers kept for reuse. */
const SPARE_BUFFERS = 2;
const BATCH_BUFFER_BYTES = 64 * 1024;

interface PendingAppend extends JournalEntry {
  readonly log: SessionLog;
  offset: number;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
  /** {@link GroupCommit.settledQueue} calls waiting for this append to settle. */
  waiters: (() => void)[] | undefined;
}

/** A group commit in flight. */
interface Batch {
  readonly seq: number;
  readonly position: number;
  readonly length: number;
  readonly items: readonly PendingAppend[];
}

/**
 * The commit pipeline: queued appends of every session go to the journal in
 * one write and one fdatasync per batch, and resolve together once it returns.
 * Between batches it runs the exclusive jobs: opening the journal, erasing a
 * refused batch, checkpoints.
 */
export class GroupCommit {
  private queue: PendingAppend[] = [];
  private inFlight: Batch | undefined;
  /** A batch whose write or fsync failed, to be erased before the next one. */
  private refused: Batch | undefined;
  private tickScheduled = false;
  /** A rollback, checkpoint or journal opening is running: no batch starts meanwhile. */
  private exclusive: Promise<void> | undefined;
  private checkpointWaiters: { resolve: () => void; reject: (error: unknown) => void }[] = [];
  private checkpointRetryAt = 0;
  private readonly spareBuffers: Buffer[] = [];

  constructor(
    private readonly context: StoreContext,
    private readonly journal: JournalWriter,
    private readonly checkpointer: Checkpointer,
    /** Runs before the journal is first created (the marker upgrade). */
    private readonly beforeJournalCreated: () => Promise<void>,
  ) {}

  /** Queues a record of a log whose state is known; resolves once it is durable. */
  enqueue(log: SessionLog, payload: Uint8Array): Promise<void> {
    log.appending++;
    return new Promise<void>((resolvePromise, rejectPromise) => {
      this.queue.push({
        log,
        idBytes: log.idBytes,
        offset: 0,
        payload,
        resolve: resolvePromise,
        reject: rejectPromise,
        waiters: undefined,
      });
      this.pump(false);
    });
  }

  // Queued and in-flight appends settle in queue order, so waiting for the last
  // one waits for them all.
  /** Resolves once every append queued so far has settled. */
  async settledQueue(): Promise<void> {
    const last = this.queue.at(-1) ?? this.inFlight?.items.at(-1);
    if (last) {
      await new Promise<void>((done) => {
        last.waiters ??= [];
        last.waiters.push(done);
      });
    }
  }

  /** Resolves once the exclusive job running now (if any) is done. */
  async exclusiveDone(): Promise<void> {
    await this.exclusive;
  }

  /** Runs a checkpoint as soon as no batch is on disk. */
  requestCheckpoint(): Promise<void> {
    return new Promise<void>((resolvePromise, rejectPromise) => {
      this.checkpointWaiters.push({ resolve: resolvePromise, reject: rejectPromise });
      this.pump(false);
    });
  }

  /**
   * Decides what the journal does next; called whenever something changes. One
   * thing at a time: a batch on its way to disk, or an exclusive job (opening the
   * journal, erasing a refused batch, a checkpoint). Queued records go at the next
   * turn of the event loop, so that every append made in this turn joins them
   * (including those of the sessions the last batch just acknowledged); records
   * queued while a batch is on disk form the next batch.
   *
   * One batch in flight, not several overlapping: on the disks measured, two
   * concurrent fdatasyncs of one file take about as long as two in a row, so
   * overlap only halves the records each fsync carries (see the storage guide).
   */
  private pump(tick: boolean): void {
    if (this.exclusive || this.inFlight) return;
    if (this.refused) {
      this.runExclusive(() => this.rollback());
    } else if (this.checkpointDue()) {
      this.runExclusive(() => this.runCheckpoint());
    } else if (this.queue.length === 0) {
      return;
    } else if (!this.journal.file || this.journal.generationPending) {
      this.runExclusive(() => this.prepareJournal());
    } else if (tick) {
      this.startBatch();
    } else {
      this.scheduleTick();
    }
  }

  private scheduleTick(): void {
    if (this.tickScheduled) return;
    this.tickScheduled = true;
    setImmediate(() => {
      this.tickScheduled = false;
      this.pump(true);
    });
  }

  private runExclusive(job: () => Promise<void>): void {
    this.exclusive = job()
      .catch((error: unknown) => {
        // Every job settles what it owns; this guards against a bug leaving
        // callers waiting forever.
        this.context.logger.error("file store internal error", { error: describe(error) });
        this.failAppends(this.queue.splice(0), error);
      })
      .finally(() => {
        this.exclusive = undefined;
        this.pump(true);
      });
  }

  private checkpointDue(): boolean {
    const { writePosition, size } = this.journal;
    if (this.checkpointWaiters.length > 0) return true;
    if (writePosition < size) return false;
    if (writePosition >= this.checkpointRetryAt) return true;
    // Checkpoints keep failing: at the growth limit, each new append tries again.
    return writePosition >= JOURNAL_GROWTH_LIMIT * size && this.queue.length > 0;
  }

  private async prepareJournal(): Promise<void> {
    try {
      await this.journal.open(this.beforeJournalCreated);
      if (this.journal.generationPending) await this.journal.startGeneration();
    } catch (error) {
      this.failAppends(this.queue.splice(0), error);
    }
  }

  private startBatch(): void {
    const journal = this.journal;
    const file = journal.file;
    if (!file) throw new Error("a batch started before the journal was open");
    let count = 0;
    let entryBytes = 0;
    for (const item of this.queue) {
      const size = 4 + item.idBytes.length + 12 + item.payload.length;
      if (count > 0 && entryBytes + size > MAX_BATCH_BYTES) break;
      entryBytes += size;
      count++;
    }
    const items = count === this.queue.length ? this.queue : this.queue.slice(0, count);
    this.queue = count === this.queue.length ? [] : this.queue.slice(count);
    const seq = journal.nextSeq;
    const pooled = this.takeBuffer(batchFrameSize(entryBytes));
    let frame: Buffer;
    try {
      for (const item of items) {
        const log = item.log;
        item.offset = logBase(log) + log.framesUsed;
        appendFrame(log, item.payload);
      }
      frame = encodeBatch(file.generation, seq, journal.acked, items, entryBytes, pooled);
    } catch (error) {
      this.giveBack(pooled);
      for (const item of items) item.log.framesUsed = item.log.framesCommitted;
      this.failAppends(items, error);
      return;
    }
    journal.nextSeq++;
    const position = journal.writePosition;
    journal.writePosition += frame.length;
    const batch: Batch = { seq, position, length: frame.length, items };
    this.inFlight = batch;
    file
      .write(frame, position)
      .finally(() => this.giveBack(pooled))
      .then(() => file.sync())
      .then(
        () => this.settle(batch, undefined),
        (error: unknown) => this.settle(batch, error ?? new Error("journal write failed")),
      );
  }

  // Batch buffers are reused once their write has returned: a fresh buffer per
  // batch is most of what a batch costs the allocator.
  private takeBuffer(size: number): Buffer | undefined {
    if (size > BATCH_BUFFER_BYTES) return undefined;
    return this.spareBuffers.pop() ?? Buffer.allocUnsafeSlow(BATCH_BUFFER_BYTES);
  }

  private giveBack(buffer: Buffer | undefined): void {
    if (buffer && this.spareBuffers.length < SPARE_BUFFERS) this.spareBuffers.push(buffer);
  }

  private settle(batch: Batch, error: unknown): void {
    this.inFlight = undefined;
    if (error === undefined) {
      this.commit(batch);
    } else {
      this.refused = batch;
      this.failAppends(batch.items, error);
    }
    this.pump(false);
  }

  private commit(batch: Batch): void {
    for (const item of batch.items) {
      const log = item.log;
      log.framesCommitted = item.offset + FRAME_OVERHEAD + item.payload.length - logBase(log);
      this.checkpointer.noteRecords(log, 1);
    }
    const count = batch.items.length;
    const counters = this.context.counters;
    this.journal.acked = batch.seq;
    counters.appends += count;
    counters.batches++;
    counters.journalSyncs++;
    counters.journalBytesWritten += batch.length;
    if (count > counters.maxRecordsPerFsync) counters.maxRecordsPerFsync = count;
    for (const item of batch.items) {
      item.log.appending--;
      item.resolve();
      if (item.waiters) for (const waiter of item.waiters) waiter();
    }
  }

  private failAppends(items: readonly PendingAppend[], cause: unknown): void {
    if (items.length === 0) return;
    this.context.counters.failedAppends += items.length;
    const error =
      cause instanceof FileStoreError
        ? cause
        : new FileStoreError(
            "IO_FAILED",
            `could not make ${items.length} record(s) durable: ${describe(cause)}`,
            { cause },
          );
    if (!(cause instanceof FileStoreError)) {
      this.context.logger.error("append failed; the records were not kept", {
        records: items.length,
        sessions: new Set(items.map((item) => item.log.sessionId)).size,
        error: describe(cause),
      });
    }
    for (const item of items) {
      item.log.appending--;
      item.reject(error);
      if (item.waiters) for (const waiter of item.waiters) waiter();
    }
  }

  // The refused batch may be complete on disk: its magic is zeroed so that it
  // ends the journal, and the next batch is written in its place. If even that
  // fails, the next batch still overwrites it, and only a crash before then could
  // bring it back (see the storage guide).
  private async rollback(): Promise<void> {
    const refused = this.refused as Batch;
    this.refused = undefined;
    try {
      await this.journal.file?.invalidate(refused.position);
    } catch (error) {
      this.context.logger.error("could not erase a refused batch from the journal", {
        offset: refused.position,
        error: describe(error),
      });
    }
    this.journal.writePosition = refused.position;
    this.journal.nextSeq = refused.seq;
    for (const item of refused.items) item.log.framesUsed = item.log.framesCommitted;
  }

  private async runCheckpoint(): Promise<void> {
    const waiters = this.checkpointWaiters.splice(0);
    const { journal } = this;
    try {
      await this.checkpointer.run();
      this.checkpointRetryAt = 0;
      for (const waiter of waiters) waiter.resolve();
    } catch (error) {
      this.checkpointRetryAt = journal.writePosition + Math.ceil(journal.size / 8);
      this.context.logger.error(
        "checkpoint failed; the journal keeps the records until one succeeds",
        { error: describe(error), journalInUse: journal.writePosition },
      );
      if (journal.writePosition >= JOURNAL_GROWTH_LIMIT * journal.size) {
        this.failAppends(
          this.queue.splice(0),
          new FileStoreError(
            "IO_FAILED",
            `the journal is full and checkpoints fail: ${describe(error)}`,
            { cause: error },
          ),
        );
      }
      for (const waiter of waiters) waiter.reject(error);
    }
  }
}
