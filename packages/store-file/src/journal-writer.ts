import { JournalFile } from "./journal-file.js";
import { JOURNAL_BODY, type JournalGeneration } from "./journal-format.js";
import type { StoreContext } from "./store-context.js";

/**
 * Where the journal stands: its file (opened on the first batch), its
 * generation, where the next batch goes and which number it takes. The group
 * commit writes batches through it; checkpoints start new generations.
 */
export class JournalWriter {
  file: JournalFile | undefined;
  /** The generation found at start-up, until the journal is opened for writing. */
  private found: JournalGeneration | undefined;
  writePosition = JOURNAL_BODY;
  nextSeq = 0;
  /** The highest batch acknowledged; every batch records it (see journal-format.ts). */
  acked = -1;
  /** Starting a new generation failed: no batch goes to the journal until one starts. */
  generationPending = false;

  constructor(
    private readonly context: StoreContext,
    /** The journal's size (`journalBytes`). */
    readonly size: number,
  ) {}

  /** Continues a journal found at start-up, after its last live batch. */
  resume(generation: JournalGeneration, end: number, nextSeq: number): void {
    this.found = generation;
    this.writePosition = end;
    this.nextSeq = nextSeq;
    this.acked = nextSeq - 1;
  }

  /** Opens the journal found at start-up, or creates one (after `beforeCreate`). */
  async open(beforeCreate: () => Promise<void>): Promise<JournalFile> {
    if (this.file) return this.file;
    const { fs, journalPath } = this.context;
    if (this.found) {
      this.file = await JournalFile.open(fs, journalPath, this.found);
    } else {
      await beforeCreate();
      this.file = await JournalFile.create(fs, journalPath, this.nextSeq, this.size);
      this.context.counters.directorySyncs++;
      this.found = this.file.generation;
      this.writePosition = JOURNAL_BODY;
    }
    return this.file;
  }

  /** Whether a checkpoint has anything to start over: batches, or a generation still to start. */
  get inUse(): boolean {
    return this.writePosition > JOURNAL_BODY || this.generationPending;
  }

  // If the new slot's write or fsync fails, it may or may not be on disk, so no
  // batch may be written until a later attempt succeeds: written under the old
  // generation they would be invisible after a restart that found the new one.
  async startGeneration(): Promise<void> {
    this.file ??= await JournalFile.open(
      this.context.fs,
      this.context.journalPath,
      this.found as JournalGeneration,
    );
    this.generationPending = true;
    await this.file.startGeneration(this.nextSeq);
    this.generationPending = false;
    this.writePosition = JOURNAL_BODY;
    this.context.counters.generationSyncs++;
  }

  async close(): Promise<void> {
    await this.file?.close().catch(() => {});
    this.file = undefined;
  }
}
