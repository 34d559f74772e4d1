import type { Envelope, ModeDescriptor, PolicyDescriptor } from "@macp/proto";
import type { LogRecord } from "./log-record.js";
import type { SessionStore } from "./session-store.js";

/** What a shared store keeps about a session after each append, for cluster-wide questions. */
export interface SessionSummary {
  readonly initiator: string;
  /** Whether the session is OPEN once this record applies (it then counts for max_open_sessions). */
  readonly open: boolean;
  /** The session's deadline once this record applies. */
  readonly expiresAtMs: number;
}

/** A SessionStart's cluster-wide open-session cap, checked atomically with its append. */
export interface OpenSessionLimit {
  readonly max: number;
  /** Sessions whose deadline is before this instant no longer count. */
  readonly nowMs: number;
}

export type SharedAppendOutcome =
  | { readonly kind: "appended" }
  /** The position was taken by another writer: catch up from the log and decide again. */
  | { readonly kind: "conflict" }
  /** The initiator already has `open` OPEN sessions, at or above the limit. */
  | { readonly kind: "limit"; readonly open: number };

/** A change to the policy or mode registry, replayed by every instance in one order. */
export type RegistryChange =
  | {
      readonly kind: "registerPolicy";
      readonly descriptor: PolicyDescriptor;
      readonly registeredAtMs: number;
    }
  | { readonly kind: "unregisterPolicy"; readonly policyId: string }
  | { readonly kind: "registerMode"; readonly descriptor: ModeDescriptor }
  | { readonly kind: "unregisterMode"; readonly mode: string }
  | { readonly kind: "promoteMode"; readonly mode: string; readonly promotedName: string };

/** What a runtime following a shared store is told. Calls may repeat; order within a session holds. */
export interface ClusterListener {
  /** A record was committed at `position` of the session's log (by any instance). */
  appended(sessionId: string, position: number): void;
  /** An ambient Signal or Progress was accepted; every instance receives each one once, in one order. */
  ambient(envelope: Envelope): void;
  /**
   * A registry change (from any instance, this one included), in the cluster's
   * one order; from the first change ever made when following starts.
   */
  registryChanged(change: RegistryChange): void;
  /** Notifications may have been lost (reconnect): compare every session with the log. */
  resync(): void;
}

/**
 * A store several runtime instances share (PostgreSQL). Besides the plain
 * port it offers optimistic appends at an expected position, reads from a
 * position, cluster-wide ambient envelopes and a change feed. A runtime given
 * such a store keeps each session's in-memory state as a replica of its log:
 * every decision ends in an append at the position it was based on; a
 * conflict, or a refusal, makes it catch up from the log and decide again.
 */
export interface SharedSessionStore extends SessionStore {
  readonly shared: true;
  /**
   * Appends `record` as the session's record number `position` (0-based) in
   * one transaction with the session's summary. Resolves once committed.
   * Rejects when the store cannot be reached (the runtime answers INTERNAL_ERROR).
   */
  appendAt(
    sessionId: string,
    position: number,
    record: LogRecord,
    summary: SessionSummary,
    limit?: OpenSessionLimit,
  ): Promise<SharedAppendOutcome>;
  /** The session's records from `position` on, in order. */
  readFrom(sessionId: string, position: number): Promise<readonly LogRecord[]>;
  /** Every session id with its log length, for a resync after lost notifications. */
  logLengths(): Promise<ReadonlyMap<string, number>>;
  /** Delivers an ambient envelope to every instance's listener. Resolves once durable. */
  publishAmbient(envelope: Envelope): Promise<void>;
  /** Delivers registry changes committed so far and not yet delivered; resolves when done. */
  syncRegistry(): Promise<void>;
  /** Records a registry change for every instance. Resolves once durable. */
  publishRegistryChange(change: RegistryChange): Promise<void>;
  /**
   * Starts delivering cluster changes to `listener`. `ready` resolves once the
   * feed listens and every registry change so far has been delivered.
   */
  follow(listener: ClusterListener): { readonly ready: Promise<void>; stop(): void };
}

export function isSharedStore(store: SessionStore): store is SharedSessionStore {
  return (store as Partial<SharedSessionStore>).shared === true;
}
