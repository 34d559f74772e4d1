import type { Envelope } from "@macp/proto";
import type { LogRecord } from "../store/log-record.js";
import type { StoredSession } from "../store/session-store.js";
import type {
  ClusterListener,
  RegistryChange,
  SharedAppendOutcome,
  SharedSessionStore,
} from "../store/shared-session-store.js";

/**
 * A shared store in memory for this package's tests of runtimes sharing one log. Appends are
 * announced to nobody, so instances find out about each other's records only
 * through conflicts and refusals. Registry changes form one ordered log that
 * each follower receives in order; `failRegistryWrites` makes writes reject
 * as an unreachable database would.
 */
export class SharedMemoryLog implements SharedSessionStore {
  readonly shared = true;
  readonly logs = new Map<string, LogRecord[]>();
  readonly registry: RegistryChange[] = [];
  failRegistryWrites = false;
  /** Each follower with how many registry changes it has been given. */
  private readonly followers = new Map<ClusterListener, number>();

  async appendAt(sessionId: string, position: number, record: LogRecord) {
    const log = this.logs.get(sessionId) ?? [];
    if (log.length !== position) return { kind: "conflict" } satisfies SharedAppendOutcome;
    log.push(record);
    this.logs.set(sessionId, log);
    return { kind: "appended" } satisfies SharedAppendOutcome;
  }
  async readFrom(sessionId: string, position: number) {
    return (this.logs.get(sessionId) ?? []).slice(position);
  }
  async logLengths() {
    return new Map([...this.logs].map(([id, log]) => [id, log.length] as const));
  }
  async publishAmbient(envelope: Envelope) {
    for (const listener of this.followers.keys()) listener.ambient(envelope);
  }
  async syncRegistry() {
    for (const [listener, delivered] of this.followers) {
      for (const change of this.registry.slice(delivered)) listener.registryChanged(change);
      this.followers.set(listener, this.registry.length);
    }
  }
  async publishRegistryChange(change: RegistryChange) {
    if (this.failRegistryWrites) throw new Error("registry write failed");
    this.registry.push(change);
  }
  follow(listener: ClusterListener) {
    this.followers.set(listener, 0);
    return {
      ready: this.syncRegistry(),
      stop: () => {
        this.followers.delete(listener);
      },
    };
  }
  append(): never {
    throw new Error("a shared store is appended to at a position");
  }
  read(sessionId: string) {
    return this.logs.get(sessionId);
  }
  async *loadAll(): AsyncIterable<StoredSession> {}
  async close() {}
}
