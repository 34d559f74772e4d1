import type { ClusterListener } from "@macp/core";
import pg from "pg";
import {
  AMBIENT_LOG,
  lastOrderedId,
  type OrderedLog,
  REGISTRY_LOG,
  readOrdered,
} from "./ordered-log.js";

export interface ClusterFeedOptions {
  readonly url: string;
  /** Reads the ordered logs (never the LISTEN connection, which only listens). */
  readonly pool: pg.Pool;
  readonly listener: ClusterListener;
  /** Turns an ambient row into the listener call; a row that cannot be decoded is skipped. */
  readonly deliverAmbient: (bytes: Uint8Array) => void;
  readonly deliverRegistry: (bytes: Uint8Array) => void;
  readonly onError: ((error: Error) => void) | undefined;
}

const RECONNECT_MIN_MS = 200;
const RECONNECT_MAX_MS = 5000;

/** Delivers one ordered log's entries past the last one delivered, one read at a time. */
class OrderedFollower {
  /** Undefined until the first connection sets the starting point. */
  lastId: bigint | undefined;
  stopped = false;
  private reading: Promise<void> | undefined;
  /** The one read queued behind the current one; it covers every call made meanwhile. */
  private queued: Promise<void> | undefined;

  constructor(
    private readonly pool: pg.Pool,
    private readonly log: OrderedLog,
    private readonly deliver: (bytes: Uint8Array) => void,
    private readonly onError: ((error: Error) => void) | undefined,
  ) {}

  /** Resolves once everything committed before the call has been delivered (or a read failed). */
  catchUp(): Promise<void> {
    if (this.queued !== undefined) return this.queued;
    if (this.reading === undefined) {
      this.reading = this.read().finally(() => {
        this.reading = undefined;
      });
      return this.reading;
    }
    this.queued = this.reading.then(() => {
      this.queued = undefined;
      return this.catchUp();
    });
    return this.queued;
  }

  private async read(): Promise<void> {
    if (this.lastId === undefined || this.stopped) return;
    try {
      for (const entry of await readOrdered(this.pool, this.log, this.lastId)) {
        if (this.stopped) return;
        this.lastId = entry.id;
        this.deliver(entry.bytes);
      }
    } catch (error) {
      // Read again at the next notification or reconnection.
      this.onError?.(error instanceof Error ? error : new Error(String(error)));
    }
  }
}

/**
 * The change feed: one LISTEN connection per follower. Session appends arrive
 * as `position:session_id` notifications; ambient envelopes and registry
 * changes are read back from their ordered logs. After every (re)connection
 * the listener is told to resync, since notifications sent meanwhile are lost.
 */
export class ClusterFeed {
  readonly ready: Promise<void>;
  private markReady: () => void = () => {};
  private client: pg.Client | undefined;
  private stopped = false;
  private reconnectDelay = RECONNECT_MIN_MS;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly ambient: OrderedFollower;
  private readonly registry: OrderedFollower;

  constructor(private readonly options: ClusterFeedOptions) {
    this.ready = new Promise((resolve) => {
      this.markReady = resolve;
    });
    this.ambient = new OrderedFollower(
      options.pool,
      AMBIENT_LOG,
      options.deliverAmbient,
      options.onError,
    );
    this.registry = new OrderedFollower(
      options.pool,
      REGISTRY_LOG,
      options.deliverRegistry,
      options.onError,
    );
  }

  start(): void {
    void this.connect();
  }

  stop(): void {
    this.stopped = true;
    this.ambient.stopped = true;
    this.registry.stopped = true;
    this.markReady();
    if (this.timer !== undefined) clearTimeout(this.timer);
    const client = this.client;
    this.client = undefined;
    void client?.end().catch(() => {});
  }

  /** Delivers registry changes committed so far. */
  syncRegistry(): Promise<void> {
    return this.registry.catchUp();
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
      await client.query(`LISTEN ${AMBIENT_LOG.channel}`);
      await client.query(`LISTEN ${REGISTRY_LOG.channel}`);
      if (this.stopped) {
        await client.end();
        return;
      }
      this.client = client;
      this.reconnectDelay = RECONNECT_MIN_MS;
      // Ambient envelopes are live only: a new follower starts after the newest one.
      this.ambient.lastId ??= await lastOrderedId(this.options.pool, AMBIENT_LOG);
      // Registry changes are state: a new follower replays them all.
      this.registry.lastId ??= 0n;
      await Promise.all([this.ambient.catchUp(), this.registry.catchUp()]);
      this.markReady();
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
    if (channel === AMBIENT_LOG.channel) {
      void this.ambient.catchUp();
      return;
    }
    if (channel === REGISTRY_LOG.channel) {
      void this.registry.catchUp();
      return;
    }
    const colon = payload.indexOf(":");
    if (colon <= 0) return;
    this.options.listener.appended(payload.slice(colon + 1), Number(payload.slice(0, colon)));
  }
}
