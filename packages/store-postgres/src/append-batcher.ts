import type pg from "pg";

/** One append waiting for its commit. */
export interface PendingAppend {
  readonly sessionId: string;
  readonly position: number;
  readonly record: Uint8Array;
  readonly initiator: string;
  readonly open: boolean;
  readonly expiresAtMs: number;
  resolve(inserted: boolean): void;
  reject(error: unknown): void;
}

// One statement, one transaction, any number of sessions: the records whose
// position is free are inserted, their sessions' summaries updated and one
// notification per record sent, all at the commit. Rows go in session order so
// concurrent batches from several instances lock rows in the same order.
const APPEND_BATCH = `
WITH input AS (
  SELECT * FROM unnest($1::text[], $2::integer[], $3::bytea[], $4::text[], $5::boolean[], $6::bigint[])
    AS t(session_id, seq, record, initiator, open, expires_at_ms)
), inserted AS (
  INSERT INTO macp_records (session_id, seq, record)
  SELECT session_id, seq, record FROM input ORDER BY session_id
  ON CONFLICT DO NOTHING
  RETURNING session_id, seq
), summarised AS (
  INSERT INTO macp_sessions (session_id, initiator, open, expires_at_ms, log_length)
  SELECT i.session_id, i.initiator, i.open, i.expires_at_ms, i.seq + 1
  FROM input i JOIN inserted USING (session_id, seq) ORDER BY i.session_id
  ON CONFLICT (session_id) DO UPDATE SET
    open = excluded.open, expires_at_ms = excluded.expires_at_ms, log_length = excluded.log_length
  RETURNING 1
)
SELECT session_id, seq, pg_notify('macp_log', seq || ':' || session_id) AS notified FROM inserted
`;

/** Deadlock and serialisation failures are safe to retry: the transaction changed nothing. */
const RETRYABLE = new Set(["40P01", "40001"]);

/**
 * Group commit: appends that arrive while earlier batches are in flight are
 * sent together, as one statement and one commit. With one envelope in flight
 * per session, a batch never holds two appends of the same session; if it
 * would, the second waits for the next batch.
 */
export class AppendBatcher {
  private queue: PendingAppend[] = [];
  private inFlight = 0;
  /** Appends and commits so far, for the messages-per-commit figure. */
  appends = 0;
  commits = 0;

  constructor(
    private readonly pool: pg.Pool,
    private readonly maxInFlight: number,
    private readonly maxBatch: number,
  ) {}

  append(entry: Omit<PendingAppend, "resolve" | "reject">): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      this.queue.push({ ...entry, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.inFlight < this.maxInFlight && this.queue.length > 0) {
      const batch: PendingAppend[] = [];
      const sessions = new Set<string>();
      const rest: PendingAppend[] = [];
      for (const entry of this.queue) {
        if (batch.length < this.maxBatch && !sessions.has(entry.sessionId)) {
          sessions.add(entry.sessionId);
          batch.push(entry);
        } else {
          rest.push(entry);
        }
      }
      this.queue = rest;
      this.inFlight++;
      void this.run(batch).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  private async run(batch: PendingAppend[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        const result = await this.pool.query<{ session_id: string; seq: number }>(APPEND_BATCH, [
          batch.map((e) => e.sessionId),
          batch.map((e) => e.position),
          batch.map((e) => e.record),
          batch.map((e) => e.initiator),
          batch.map((e) => e.open),
          batch.map((e) => e.expiresAtMs),
        ]);
        this.commits++;
        this.appends += result.rows.length;
        const inserted = new Set(result.rows.map((row) => `${row.seq}:${row.session_id}`));
        for (const entry of batch) {
          entry.resolve(inserted.has(`${entry.position}:${entry.sessionId}`));
        }
        return;
      } catch (error) {
        const code = (error as { code?: unknown }).code;
        if (attempt < 5 && typeof code === "string" && RETRYABLE.has(code)) continue;
        for (const entry of batch) entry.reject(error);
        return;
      }
    }
  }
}
