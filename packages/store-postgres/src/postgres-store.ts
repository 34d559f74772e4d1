import { fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  type ClusterListener,
  decodeLogRecord,
  encodeLogRecord,
  type LogRecord,
  type OpenSessionLimit,
  type SessionSummary,
  type SharedAppendOutcome,
  type SharedSessionStore,
  type StoredSession,
} from "@macp/core";
import { type Envelope, EnvelopeSchema } from "@macp/proto";
import pg from "pg";
import { AppendBatcher } from "./append-batcher.js";
import { ClusterFeed } from "./cluster-feed.js";
import { AMBIENT_LOG, appendOrdered, REGISTRY_LOG } from "./ordered-log.js";
import { decodeRegistryChange, encodeRegistryChange } from "./registry-change-codec.js";
import { migrate } from "./schema.js";
import { withClient } from "./with-client.js";

export interface PostgresStoreOptions {
  /** A libpq connection URL (`postgres://user:password@host:5432/db?sslmode=require`). Required. */
  readonly url: string;
  /** Connections in the pool. Default 10. */
  readonly poolSize?: number;
  /**
   * Append batches in flight at once; appends arriving meanwhile join the next
   * batch (one statement, one commit). Default 4.
   */
  readonly maxBatchesInFlight?: number;
  /** Largest batch. Default 256. */
  readonly maxBatch?: number;
  /**
   * How long a query may wait for a connection or an answer before the
   * operation fails (the runtime then answers INTERNAL_ERROR, which clients retry).
   * Default 5000 ms.
   */
  readonly timeoutMs?: number;
  /** How long ambient Signals and Progress are kept for instances catching up. Default 10 min. */
  readonly ambientRetentionMs?: number;
  /** Where connection problems of the change feed are reported. Default: discarded. */
  readonly onFeedError?: (error: Error) => void;
}

/** The PostgreSQL store: a {@link SharedSessionStore} several runtime instances use at once. */
export interface PostgresStore extends SharedSessionStore {
  /** Appends committed and commits made so far (messages per commit = appends / commits). */
  commitStats(): { readonly appends: number; readonly commits: number };
}

/**
 * Connects, creates or upgrades the schema (safe when several instances start
 * at once) and returns the store. Rejects when the database cannot be reached.
 */
export async function createPostgresStore(options: PostgresStoreOptions): Promise<PostgresStore> {
  const timeoutMs = options.timeoutMs ?? 5000;
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolSize ?? 10,
    connectionTimeoutMillis: timeoutMs,
    query_timeout: timeoutMs,
  });
  // An idle connection that breaks (database restart) must not crash the process;
  // the next query opens a new one.
  pool.on("error", () => {});
  try {
    await migrate(pool);
  } catch (error) {
    await pool.end();
    throw error;
  }
  const batcher = new AppendBatcher(pool, options.maxBatchesInFlight ?? 4, options.maxBatch ?? 256);
  const retentionMs = options.ambientRetentionMs ?? 600_000;
  const feeds = new Set<ClusterFeed>();
  let ambientPublished = 0;
  let closed = false;

  const readRecords = async (sessionId: string, position: number): Promise<LogRecord[]> => {
    const result = await pool.query<{ record: Buffer }>(
      "SELECT record FROM macp_records WHERE session_id = $1 AND seq >= $2 ORDER BY seq",
      [sessionId, position],
    );
    return result.rows.map((row) => decodeOrThrow(sessionId, row.record));
  };

  const appendWithLimit = async (
    sessionId: string,
    record: LogRecord,
    summary: SessionSummary,
    limit: OpenSessionLimit,
  ): Promise<SharedAppendOutcome> => {
    return withClient(pool, async (client) => {
      await client.query("BEGIN");
      try {
        // One initiator's starts serialise here, so the count cannot go stale before the commit.
        await client.query("SELECT pg_advisory_xact_lock(hashtext($1))", [
          `macp-open:${summary.initiator}`,
        ]);
        const taken = await client.query(
          "SELECT 1 FROM macp_records WHERE session_id = $1 AND seq = 0",
          [sessionId],
        );
        if (taken.rows.length > 0) {
          await client.query("ROLLBACK");
          return { kind: "conflict" };
        }
        const counted = await client.query<{ open: string }>(
          "SELECT count(*) AS open FROM macp_sessions WHERE initiator = $1 AND open AND expires_at_ms >= $2",
          [summary.initiator, limit.nowMs],
        );
        const open = Number(counted.rows[0]?.open ?? 0);
        if (open >= limit.max) {
          await client.query("ROLLBACK");
          return { kind: "limit", open };
        }
        await client.query(
          "INSERT INTO macp_records (session_id, seq, record) VALUES ($1, 0, $2)",
          [sessionId, encodeLogRecord(record)],
        );
        await client.query(
          "INSERT INTO macp_sessions (session_id, initiator, open, expires_at_ms, log_length) VALUES ($1, $2, $3, $4, 1)",
          [sessionId, summary.initiator, summary.open, summary.expiresAtMs],
        );
        await client.query("SELECT pg_notify('macp_log', '0:' || $1)", [sessionId]);
        await client.query("COMMIT");
        batcher.appends++;
        batcher.commits++;
        return { kind: "appended" };
      } catch (error) {
        await client.query("ROLLBACK").catch(() => {});
        if ((error as { code?: unknown }).code === "23505") return { kind: "conflict" };
        throw error;
      }
    });
  };

  return {
    shared: true,
    async appendAt(sessionId, position, record, summary, limit) {
      if (closed) throw new Error("store is closed");
      if (limit !== undefined && position === 0) {
        return appendWithLimit(sessionId, record, summary, limit);
      }
      const inserted = await batcher.append({
        sessionId,
        position,
        record: encodeLogRecord(record),
        initiator: summary.initiator,
        open: summary.open,
        expiresAtMs: summary.expiresAtMs,
      });
      return inserted ? { kind: "appended" } : { kind: "conflict" };
    },
    async append(sessionId, record) {
      // The plain port (tools, imports): the next free position, no summary changes beyond the length.
      const result = await pool.query<{ length: number }>(
        "SELECT coalesce(max(seq) + 1, 0) AS length FROM macp_records WHERE session_id = $1",
        [sessionId],
      );
      const position = Number(result.rows[0]?.length ?? 0);
      const inserted = await batcher.append({
        sessionId,
        position,
        record: encodeLogRecord(record),
        initiator: record.kind === "incoming" ? record.envelope.sender : "",
        open: position === 0,
        expiresAtMs: record.kind === "incoming" ? (record.binding?.expiresAtMs ?? 0) : 0,
      });
      if (!inserted) throw new Error(`position ${position} of session ${sessionId} is taken`);
    },
    readFrom: readRecords,
    async read(sessionId) {
      const records = await readRecords(sessionId, 0);
      return records.length === 0 ? undefined : records;
    },
    async *loadAll(): AsyncIterable<StoredSession> {
      const ids = await pool.query<{ session_id: string }>(
        "SELECT DISTINCT session_id FROM macp_records ORDER BY session_id",
      );
      for (const { session_id: sessionId } of ids.rows) {
        try {
          yield { sessionId, records: await readRecords(sessionId, 0) };
        } catch (error) {
          if (!(error instanceof UndecodableRecord)) throw error;
          yield { sessionId, error: error.message };
        }
      }
    },
    async logLengths() {
      const result = await pool.query<{ session_id: string; log_length: number }>(
        "SELECT session_id, log_length FROM macp_sessions",
      );
      return new Map(result.rows.map((row) => [row.session_id, row.log_length]));
    },
    async publishAmbient(envelope: Envelope) {
      if (closed) throw new Error("store is closed");
      const cleanUp =
        ++ambientPublished % 1000 === 0
          ? `DELETE FROM macp_ambient WHERE created_at < now() - interval '${Math.ceil(retentionMs / 1000)} seconds'`
          : undefined;
      await appendOrdered(pool, AMBIENT_LOG, toBinary(EnvelopeSchema, envelope), cleanUp);
    },
    async publishRegistryChange(change) {
      if (closed) throw new Error("store is closed");
      await appendOrdered(pool, REGISTRY_LOG, encodeRegistryChange(change));
    },
    async syncRegistry() {
      await Promise.all([...feeds].map((feed) => feed.syncRegistry()));
    },
    follow(listener: ClusterListener) {
      const feed = new ClusterFeed({
        url: options.url,
        pool,
        listener,
        deliverAmbient: (bytes) => listener.ambient(fromBinary(EnvelopeSchema, bytes)),
        deliverRegistry: (bytes) => listener.registryChanged(decodeRegistryChange(bytes)),
        onError: options.onFeedError,
      });
      feeds.add(feed);
      feed.start();
      return {
        ready: feed.ready,
        stop() {
          feeds.delete(feed);
          feed.stop();
        },
      };
    },
    commitStats() {
      return { appends: batcher.appends, commits: batcher.commits };
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const feed of feeds) feed.stop();
      feeds.clear();
      await pool.end();
    },
  };
}

class UndecodableRecord extends Error {}

export function plainBytes(bytes: Uint8Array): Uint8Array {
  return Object.getPrototypeOf(bytes) === Uint8Array.prototype ? bytes : new Uint8Array(bytes);
}

function decodeOrThrow(sessionId: string, bytes: Uint8Array): LogRecord {
  // pg returns Buffers; records must hold plain Uint8Arrays, as replicas built elsewhere do.
  const decoded = decodeLogRecord(plainBytes(bytes));
  if (decoded.isErr()) throw new UndecodableRecord(`session ${sessionId}: ${decoded.error}`);
  return decoded.value;
}
