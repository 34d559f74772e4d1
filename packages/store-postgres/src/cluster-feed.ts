import type { ClusterListener } from "@macp/core";
import type { Envelope } from "@macp/proto";
import pg from "pg";

export interface ClusterFeedOptions {
  readonly url: string;
  /** Reads ambient envelopes (never the LISTEN connection, which only listens). */
  readonly pool: pg.Pool;
  readonly listener: ClusterListener;
  readonly decodeEnvelope: (bytes: Uint8Array) => Envelope;
  readonly onError: ((error: Error) => void) | undefined;
}

const RECONNECT_MIN_MS = 200;
const RECONNECT_MAX_MS = 5000;

/**
 * The change feed: one LISTEN connection per follower. Session appends arrive
 * as `position:session_id` notifications; ambient envelopes as ids read back
 * from the table in id order, so none is skipped or repeated. After every
 * (re)connection the listener is told to resync, since notifications sent
 * while it was away are lost.
 */
export class ClusterFeed {
  private client: pg.Client | undefined;
  private stopped = false;
  private reconnectDelay = RECONNECT_MIN_MS;
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** The last ambient id delivered; undefined until the first connection sets the starting point. */
  private lastAmbientId: bigint | undefined;
  private fetching: Promise<void> | undefined;
  private fetchAgain = false;

  constructor(private readonly options: ClusterFeedOptions) {}

  start(): void {
    void this.connect();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    const client = this.client;
    this.client = undefined;
    void client?.end().catch(() => {});
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const client = new pg.Client({ connectionString: this.options.url });
    client.on("error", (error) => this.lost(client, error));
    client.on("end", () => this.lost(client, new Error("the change feed connection ended")));
    client.on("notification", (message) => this.notified(message.channel, message.payload ?? ""));
    try {
      await client.connect();
      await client.query("LISTEN macp_log");
      await client.query("LISTEN macp_ambient");
      if (this.stopped) {
        await client.end();
        return;
      }
      this.client = client;
      this.reconnectDelay = RECONNECT_MIN_MS;
      if (this.lastAmbientId === undefined) {
        const max = await this.options.pool.query<{ id: string | null }>(
          "SELECT max(id)::text AS id FROM macp_ambient",
        );
        this.lastAmbientId = BigInt(max.rows[0]?.id ?? "0");
      } else {
        this.fetchAmbient();
      }
      this.options.listener.resync();
    } catch (error) {
      this.lost(client, error instanceof Error ? error : new Error(String(error)));
    }
  }

  private lost(client: pg.Client, error: Error): void {
    if (this.client !== undefined && this.client !== client) return;
    this.client = undefined;
    void client.end().catch(() => {});
    if (this.stopped || this.timer !== undefined) return;
    this.options.onError?.(error);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.connect();
    }, this.reconnectDelay);
    this.reconnectDelay = Math.min(this.reconnectDelay * 2, RECONNECT_MAX_MS);
  }

  private notified(channel: string, payload: string): void {
    if (this.stopped) return;
    if (channel === "macp_ambient") {
      this.fetchAmbient();
      return;
    }
    const colon = payload.indexOf(":");
    if (colon <= 0) return;
    this.options.listener.appended(payload.slice(colon + 1), Number(payload.slice(0, colon)));
  }

  /** Delivers ambient envelopes past the last one delivered, one fetch at a time. */
  private fetchAmbient(): void {
    if (this.fetching !== undefined) {
      this.fetchAgain = true;
      return;
    }
    this.fetching = this.readAmbient().finally(() => {
      this.fetching = undefined;
      if (this.fetchAgain && !this.stopped) {
        this.fetchAgain = false;
        this.fetchAmbient();
      }
    });
  }

  private async readAmbient(): Promise<void> {
    if (this.lastAmbientId === undefined) return;
    try {
      const rows = await this.options.pool.query<{ id: string; envelope: Buffer }>(
        "SELECT id::text AS id, envelope FROM macp_ambient WHERE id > $1 ORDER BY id",
        [this.lastAmbientId.toString()],
      );
      for (const row of rows.rows) {
        if (this.stopped) return;
        this.lastAmbientId = BigInt(row.id);
        this.options.listener.ambient(this.options.decodeEnvelope(row.envelope));
      }
    } catch (error) {
      // Retried at the next notification or reconnection.
      this.options.onError?.(error instanceof Error ? error : new Error(String(error)));
    }
  }
}
