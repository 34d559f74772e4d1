import type pg from "pg";
import { withClient } from "./with-client.js";

/**
 * The schema, one migration per entry; entry n moves a database from version
 * n to n + 1. Append only: a released migration never changes.
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE macp_records (
    session_id text NOT NULL,
    seq integer NOT NULL,
    record bytea NOT NULL,
    PRIMARY KEY (session_id, seq)
  );
  CREATE TABLE macp_sessions (
    session_id text PRIMARY KEY,
    initiator text NOT NULL,
    open boolean NOT NULL,
    expires_at_ms bigint NOT NULL,
    log_length integer NOT NULL
  );
  CREATE INDEX macp_sessions_open_by_initiator ON macp_sessions (initiator) WHERE open;
  CREATE SEQUENCE macp_ambient_id;
  CREATE TABLE macp_ambient (
    id bigint PRIMARY KEY,
    envelope bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
  );
  `,
  `
  CREATE SEQUENCE macp_registry_id;
  CREATE TABLE macp_registry (
    id bigint PRIMARY KEY,
    change bytea NOT NULL
  );
  `,
];

/** Advisory-lock key of migrations (the ordered logs use the next numbers). */
const MIGRATION_LOCK = 7_402_001;

/**
 * Creates or upgrades the schema. Instances starting together serialise on a
 * session-level advisory lock, so exactly one of them runs each migration and
 * the others find the work done.
 */
export async function migrate(pool: pg.Pool): Promise<number> {
  return withClient(pool, async (client) => {
    await client.query("SELECT pg_advisory_lock($1)", [MIGRATION_LOCK]);
    try {
      await client.query(
        "CREATE TABLE IF NOT EXISTS macp_schema_version (version integer NOT NULL)",
      );
      const found = await client.query<{ version: number }>(
        "SELECT version FROM macp_schema_version",
      );
      let version = found.rows[0]?.version ?? 0;
      if (found.rows.length === 0) {
        await client.query("INSERT INTO macp_schema_version (version) VALUES (0)");
      }
      if (version > MIGRATIONS.length) {
        throw new Error(
          `the database schema is version ${version}, newer than this runtime's ${MIGRATIONS.length}`,
        );
      }
      for (; version < MIGRATIONS.length; version++) {
        await client.query("BEGIN");
        try {
          await client.query(MIGRATIONS[version] as string);
          await client.query("UPDATE macp_schema_version SET version = $1", [version + 1]);
          await client.query("COMMIT");
        } catch (error) {
          await client.query("ROLLBACK");
          throw error;
        }
      }
      return version;
    } finally {
      await client.query("SELECT pg_advisory_unlock($1)", [MIGRATION_LOCK]);
    }
  });
}
