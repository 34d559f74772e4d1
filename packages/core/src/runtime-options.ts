import type { ModeDescriptor } from "@macp/proto";
import type { ModeHandler } from "./mode-handler.js";
import type { PolicyDefinition } from "./policy/policy-definition.js";
import type { RuntimeObserver } from "./runtime-observer.js";
import type { SessionStore } from "./store/session-store.js";

/** The runtime's only source of time. Hosts pass the wall clock; tests pass a simulated one. */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
}

/** Limits and tunables, each with the reference runtime's default. */
export interface RuntimeLimits {
  /** Largest envelope payload in bytes (MACP_MAX_PAYLOAD_BYTES). Default 1,048,576. */
  readonly maxPayloadBytes: number;
  /** SessionStarts per sender in any 60 s window (MACP_SESSION_START_LIMIT_PER_MINUTE). Default 60. */
  readonly sessionStartsPerMinute: number;
  /** Other envelopes per sender in any 60 s window (MACP_MESSAGE_LIMIT_PER_MINUTE). Default 600. */
  readonly messagesPerMinute: number;
  /** Suspension cap when a SessionStart sends max_suspend_ms = 0. Default 7 days. */
  readonly defaultMaxSuspendMs: number;
  /**
   * How long a terminal session stays in memory after it ended (MACP_SESSION_RETENTION_SECS).
   * Its id stays reserved forever. Default 1 h.
   */
  readonly sessionRetentionMs: number;
  /** Envelopes a session-stream subscriber may fall behind before it is dropped. Default 256. */
  readonly sessionStreamBuffer: number;
  /** Signals a WatchSignals subscriber may fall behind. Default 256. */
  readonly signalStreamBuffer: number;
  /** Lifecycle events a WatchSessions subscriber may fall behind. Default 64. */
  readonly lifecycleStreamBuffer: number;
  /** Hints a registry watcher may fall behind. Default 16. */
  readonly registryStreamBuffer: number;
  /** ListSessions page size when the request says 0. Default 100. */
  readonly defaultPageSize: number;
  /** Largest ListSessions page. Default 1000. */
  readonly maxPageSize: number;
  /**
   * How far a SessionStart timestamp may be from the acceptance time and still
   * anchor the TTL (core.md D-3); beyond it the acceptance time is used. Default 5 min.
   */
  readonly timestampSkewMs: number;
}

export const DEFAULT_LIMITS: RuntimeLimits = {
  maxPayloadBytes: 1_048_576,
  sessionStartsPerMinute: 60,
  messagesPerMinute: 600,
  defaultMaxSuspendMs: 604_800_000,
  sessionRetentionMs: 3_600_000,
  sessionStreamBuffer: 256,
  signalStreamBuffer: 256,
  lifecycleStreamBuffer: 64,
  registryStreamBuffer: 16,
  defaultPageSize: 100,
  maxPageSize: 1000,
  timestampSkewMs: 300_000,
};

/** Where the runtime reports what only an operator can act on (recovery problems). */
export interface RuntimeLogger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** What the runtime says about itself in Initialize and GetManifest. */
export interface RuntimeInfoOptions {
  readonly name: string;
  readonly title: string;
  readonly version: string;
  readonly description: string;
  readonly websiteUrl: string;
}

/** A mode the host plugs in: its descriptor and the pure state machine behind it. */
export interface ModePlugin {
  /** What ListModes/ListExtModes report; `mode` is the name envelopes carry. */
  readonly descriptor: ModeDescriptor;
  readonly handler: ModeHandler;
  /** Listed by ListModes (true) or ListExtModes (false). Default false. */
  readonly standardsTrack?: boolean;
  /** Apply the canonical SessionStart checks (ttl, versions, participants). Default false. */
  readonly strict?: boolean;
}

export interface RuntimeOptions {
  /** Required: the core never reads the system clock. */
  readonly clock: Clock;
  /** The persistence port. Default: a new in-memory store. */
  readonly store?: SessionStore;
  /** Overrides of {@link DEFAULT_LIMITS}. */
  readonly limits?: Partial<RuntimeLimits>;
  /** Policies registered at creation (e.g. loaded from MACP_POLICIES_DIR). Default none. */
  readonly policies?: readonly PolicyDefinition[];
  /** Refuse RegisterPolicy/UnregisterPolicy over the wire. Default false. */
  readonly policyRegistryReadOnly?: boolean;
  /** Default: name "macp-ts", title "MACP TypeScript Runtime". */
  readonly runtimeInfo?: Partial<RuntimeInfoOptions>;
  /** Default: discards everything. */
  readonly logger?: RuntimeLogger;
  /**
   * Modes to serve besides the built-in ones. They cannot be unregistered over
   * the wire. Default none; a blank or already-taken name throws.
   */
  readonly modes?: readonly ModePlugin[];
  /** Hooks for metrics and housekeeping (see {@link RuntimeObserver}). Default none. */
  readonly observer?: RuntimeObserver;
  /** Make any session that fails to recover fail `recover()` instead of being quarantined. Default false. */
  readonly strictRecovery?: boolean;
}
