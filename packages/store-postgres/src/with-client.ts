import type pg from "pg";

function ignoreLostConnection(): void {
  // The query running on the client rejects with the same error; that rejection is what callers handle.
}

/**
 * Runs `use` on a client checked out of the pool. While checked out, a client
 * has no pool listener for `error`, so a connection lost mid-query would throw
 * from an event emitter and end the process; the query's rejection reports it.
 */
export async function withClient<T>(
  pool: pg.Pool,
  use: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  client.on("error", ignoreLostConnection);
  try {
    return await use(client);
  } finally {
    client.removeListener("error", ignoreLostConnection);
    client.release();
  }
}
