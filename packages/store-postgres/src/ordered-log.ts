import type pg from "pg";
import { withClient } from "./with-client.js";

/**
 * A cluster-wide, totally ordered log (ambient envelopes, registry changes).
 * Ids are taken under an advisory lock held to the commit, so they commit in
 * id order and a reader asking for "ids after the last one I saw" never skips one.
 */
export interface OrderedLog {
  readonly table: "macp_ambient" | "macp_registry";
  readonly column: "envelope" | "change";
  readonly sequence: string;
  readonly channel: string;
  readonly lockKey: number;
}

export const AMBIENT_LOG: OrderedLog = {
  table: "macp_ambient",
  column: "envelope",
  sequence: "macp_ambient_id",
  channel: "macp_ambient",
  lockKey: 7_402_002,
};

export const REGISTRY_LOG: OrderedLog = {
  table: "macp_registry",
  column: "change",
  sequence: "macp_registry_id",
  channel: "macp_registry",
  lockKey: 7_402_003,
};

/** Appends one entry and notifies the log's channel at the commit. Resolves once committed. */
export async function appendOrdered(
  pool: pg.Pool,
  log: OrderedLog,
  bytes: Uint8Array,
  cleanUp?: string,
): Promise<void> {
  return withClient(pool, async (client) => {
    await client.query("BEGIN");
    try {
      await client.query("SELECT pg_advisory_xact_lock($1)", [log.lockKey]);
      await client.query(
        `WITH ins AS (INSERT INTO ${log.table} (id, ${log.column}) VALUES (nextval('${log.sequence}'), $1) RETURNING id)
         SELECT pg_notify('${log.channel}', id::text) FROM ins`,
        [bytes],
      );
      if (cleanUp !== undefined) await client.query(cleanUp);
      await client.query("COMMIT");
    } catch (error) {
      await client.query("ROLLBACK").catch(() => {});
      throw error;
    }
  });
}

/** Entries after `afterId`, in order. */
export async function readOrdered(
  pool: pg.Pool,
  log: OrderedLog,
  afterId: bigint,
): Promise<{ id: bigint; bytes: Uint8Array }[]> {
  const result = await pool.query<{ id: string; bytes: Buffer }>(
    `SELECT id::text AS id, ${log.column} AS bytes FROM ${log.table} WHERE id > $1 ORDER BY id`,
    [afterId.toString()],
  );
  return result.rows.map((row) => ({ id: BigInt(row.id), bytes: new Uint8Array(row.bytes) }));
}

/** The newest id, or 0. */
export async function lastOrderedId(pool: pg.Pool, log: OrderedLog): Promise<bigint> {
  const result = await pool.query<{ id: string | null }>(
    `SELECT max(id)::text AS id FROM ${log.table}`,
  );
  return BigInt(result.rows[0]?.id ?? "0");
}
