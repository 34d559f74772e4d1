import type {
  Ack,
  AgentManifest,
  Envelope,
  InitializeRequest,
  InitializeResponse,
  ListPoliciesResponse,
  ListSessionsResponse,
  ModeDescriptor,
  PolicyDescriptor,
  RegistryChanged,
  Root,
  RootsChanged,
  SessionLifecycleEvent,
  SessionMetadata,
  StreamSessionRequest,
  WatchPoliciesResponse,
} from "@macp/proto";
import type { Result } from "neverthrow";
import type { MacpError } from "./errors.js";
import type { Caller } from "./identity.js";
import type { JsonValue } from "./json.js";

/** The answer of a registry mutation that passed authorization: `{ok, error}` as on the wire. */
export interface RegistryOutcome {
  readonly ok: boolean;
  /** Why the registry refused, when `ok` is false. */
  readonly error: string;
  /** PromoteMode: the final mode name. */
  readonly mode?: string;
}

/** One output of a session stream: an accepted envelope, or an inline error (the stream stays open). */
export type SessionStreamOutput =
  | { readonly kind: "envelope"; readonly envelope: Envelope }
  | {
      readonly kind: "error";
      readonly error: MacpError;
      readonly sessionId: string;
      readonly messageId: string;
    };

/**
 * The server side of one StreamSession call. The host feeds client frames to
 * {@link push} in order and drains {@link outputs}. A terminating error ends
 * `outputs` by throwing a {@link MacpStreamError}.
 */
export interface SessionStream {
  /** Handles one client frame; resolves when the frame is fully processed. */
  push(frame: StreamSessionRequest): Promise<void>;
  /** The client half-closed: deliver what is buffered, then end. */
  end(): void;
  readonly outputs: AsyncIterable<SessionStreamOutput>;
}

/** Thrown by a stream's iterator when the stream ends with an error (lag, terminal frame error). */
export class MacpStreamError extends Error {
  readonly error: MacpError;
  constructor(error: MacpError) {
    super(`${error.code}: ${error.message}`);
    this.name = "MacpStreamError";
    this.error = error;
  }
}

export interface ListSessionsOptions {
  /** 0 = default page size. */
  readonly pageSize: number;
  readonly pageToken: string;
}

/** Everything the runtime holds about one session, for tests, tools and replay checks. */
export interface SessionSnapshot {
  readonly metadata: SessionMetadata;
  /** The mode state in the JSON shape of modes.md §0.7 (raw bytes for passthrough modes). */
  readonly modeState: JsonValue | Uint8Array;
  /** The resolution bytes, once RESOLVED. */
  readonly resolution: Uint8Array | undefined;
  /** Every accepted message_id, sorted. */
  readonly acceptedMessageIds: readonly string[];
  /** Accepted incoming envelopes (the last sequence number). */
  readonly acceptedCount: number;
  /** Cumulative suspended time, including a running suspension. */
  readonly suspendedMs: number;
}

/** What recovery found in the store. */
export interface RecoveryReport {
  readonly sessions: number;
  readonly records: number;
  /** Sessions whose log could not be read or replayed; they are not loaded. */
  readonly quarantined: readonly { readonly sessionId: string; readonly reason: string }[];
}

/**
 * The runtime: the single stateful object of the kernel. Methods mirror the
 * MACPRuntimeService RPCs. Methods that need an authenticated caller take a
 * {@link Caller} and answer UNAUTHENTICATED themselves, in the order the
 * protocol prescribes.
 */
export interface MacpRuntime {
  initialize(request: InitializeRequest): Result<InitializeResponse, MacpError>;
  /** Accepts or refuses one envelope. Duplicates succeed with `duplicate: true`. */
  send(envelope: Envelope | undefined, caller: Caller): Promise<Result<Ack, MacpError>>;
  /** Opens the server side of a StreamSession call (authentication is checked here). */
  openSessionStream(caller: Caller, signal?: AbortSignal): Result<SessionStream, MacpError>;
  getSession(sessionId: string, caller: Caller): Promise<Result<SessionMetadata, MacpError>>;
  listSessions(
    options: ListSessionsOptions,
    caller: Caller,
  ): Result<ListSessionsResponse, MacpError>;
  cancelSession(sessionId: string, reason: string, caller: Caller): Promise<Result<Ack, MacpError>>;
  suspendSession(
    sessionId: string,
    reason: string,
    caller: Caller,
  ): Promise<Result<Ack, MacpError>>;
  resumeSession(sessionId: string, reason: string, caller: Caller): Promise<Result<Ack, MacpError>>;

  getManifest(agentId: string): Result<AgentManifest, MacpError>;
  listModes(): ModeDescriptor[];
  listExtModes(): ModeDescriptor[];
  listRoots(): Root[];
  registerExtMode(
    descriptor: ModeDescriptor | undefined,
    caller: Caller,
  ): Result<RegistryOutcome, MacpError>;
  unregisterExtMode(mode: string, caller: Caller): Result<RegistryOutcome, MacpError>;
  promoteMode(
    mode: string,
    promotedName: string,
    caller: Caller,
  ): Result<RegistryOutcome, MacpError>;

  registerPolicy(
    descriptor: PolicyDescriptor | undefined,
    caller: Caller,
  ): Result<RegistryOutcome, MacpError>;
  unregisterPolicy(policyId: string, caller: Caller): Result<RegistryOutcome, MacpError>;
  /**
   * With a shared store, a registry mutation above only checks the change and
   * queues its write to the shared log; this resolves once the latest queued
   * change is durable and applied on this instance (in the log's order, as on
   * every other), or with the write's INTERNAL_ERROR, the registry unchanged.
   * Without a shared store it resolves at once. Hosts await it right after a
   * registry mutation and answer with its error if it has one.
   */
  registryCommitted?(): Promise<Result<void, MacpError>>;
  getPolicy(policyId: string, caller: Caller): Result<PolicyDescriptor, MacpError>;
  listPolicies(mode: string, caller: Caller): Result<ListPoliciesResponse, MacpError>;

  /** Initial CREATED per known session, then every lifecycle event. */
  watchSessions(
    caller: Caller,
    signal?: AbortSignal,
  ): Result<AsyncIterable<SessionLifecycleEvent>, MacpError>;
  /** Every accepted Signal and Progress. */
  watchSignals(caller: Caller, signal?: AbortSignal): Result<AsyncIterable<Envelope>, MacpError>;
  /** An initial hint, then one per registry change. */
  watchModeRegistry(signal?: AbortSignal): AsyncIterable<RegistryChanged>;
  /** An initial hint, then nothing. */
  watchRoots(signal?: AbortSignal): AsyncIterable<RootsChanged>;
  /** The full policy list now and after every change. */
  watchPolicies(signal?: AbortSignal): AsyncIterable<WatchPoliciesResponse>;

  /** A session's full state, or undefined if it is not in memory. No authorization: for hosts and tests. */
  inspectSession(sessionId: string): SessionSnapshot | undefined;
  /** A session's accepted envelopes in sequence order (sequence = index + 1). No authorization. */
  readHistory(sessionId: string): Promise<Envelope[]>;

  /** The earliest time (ms, runtime clock) at which {@link processDueWork} has something to do. */
  nextDeadline(): number | undefined;
  /** Expires sessions past their deadline, injects due mode messages, evicts old terminal sessions. */
  processDueWork(): Promise<void>;
  /** Rebuilds every session from the store. Call once, before serving. */
  recover(): Promise<RecoveryReport>;
  /** Ends every stream and closes the store. */
  close(): Promise<void>;
}
