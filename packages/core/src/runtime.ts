import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  type Ack,
  type AgentManifest,
  AgentManifestSchema,
  CapabilitiesSchema,
  type Envelope,
  SessionLifecycleEvent_EventType as EventType,
  type InitializeRequest,
  type InitializeResponse,
  InitializeResponseSchema,
  type ListPoliciesResponse,
  ListPoliciesResponseSchema,
  type ListSessionsResponse,
  ListSessionsResponseSchema,
  type ModeDescriptor,
  type PolicyDescriptor,
  ProgressPayloadSchema,
  type RegistryChanged,
  RegistryChangedSchema,
  type Root,
  type RootsChanged,
  RootsChangedSchema,
  SessionCancelPayloadSchema,
  type SessionLifecycleEvent,
  SessionLifecycleEventSchema,
  type SessionMetadata,
  SessionResumePayloadSchema,
  type SessionStartPayload,
  SessionStartPayloadSchema,
  SessionState,
  SessionSuspendPayloadSchema,
  SignalPayloadSchema,
  type WatchPoliciesResponse,
  WatchPoliciesResponseSchema,
} from "@macp/proto";
import { err, type Ok, ok, type Result } from "neverthrow";
import { ErrorCode, type MacpError, macpError } from "./errors.js";
import { type Caller, type Identity, isAuthenticated } from "./identity.js";
import {
  checkEnvelopeShape,
  checkSessionId,
  checkStrictStart,
  checkTtl,
  isBlank,
  isRuntimeOnlyType,
  PROTOCOL_VERSION,
} from "./kernel/envelope-checks.js";
import { RateLimiter } from "./kernel/rate-limiter.js";
import { compareStrings, holdLockUntil, Session, withLock } from "./kernel/session.js";
import { type SequencedEnvelope, SessionStreamHandler } from "./kernel/session-stream.js";
import type { MessageContext, ModeEntry, ModeStep, SessionView } from "./mode-handler.js";
import {
  builtInModes,
  createPassthroughMode,
  isCommitmentAuthority,
  ModeRegistry,
} from "./modes/index.js";
import { PolicyRegistry, policyDescriptorOf } from "./policy/index.js";
import type {
  ListSessionsOptions,
  MacpRuntime,
  RecoveryReport,
  RegistryOutcome,
  SessionSnapshot,
  SessionStream,
} from "./runtime-api.js";
import {
  type Clock,
  DEFAULT_LIMITS,
  type RuntimeInfoOptions,
  type RuntimeLimits,
  type RuntimeLogger,
  type RuntimeOptions,
} from "./runtime-options.js";
import type { InternalRecordType, LogRecord, SessionBinding } from "./store/log-record.js";
import { createMemoryStore } from "./store/memory-store.js";
import type { SessionStore } from "./store/session-store.js";
import {
  isSharedStore,
  type OpenSessionLimit,
  type RegistryChange,
  type SessionSummary,
  type SharedSessionStore,
} from "./store/shared-session-store.js";
import { Hub, type Subscription } from "./streams/hub.js";

/** Semantics revision recorded on every SessionStart (handoff uses the acceptance clock). */
const SEMANTICS_REV = 1;
const IMPLICIT_ACCEPT_PREFIX = "implicit-accept:";

const DEFAULT_RUNTIME_INFO: RuntimeInfoOptions = {
  name: "macp-ts",
  title: "MACP TypeScript Runtime",
  version: "0.1.0",
  description: "A TypeScript runtime for the Multi-Agent Coordination Protocol",
  websiteUrl: "",
};

const SILENT_LOGGER: RuntimeLogger = { info() {}, warn() {}, error() {} };

type Outcome<T> = Result<T, MacpError>;

/** The message context replay reuses from one record to the next. */
interface ReplayContext {
  readonly session: SessionView;
  acceptedAtMs: number;
  synthetic: boolean;
}
const OK_VOID: Outcome<void> = ok(undefined);
const APPLIED: Result<void, string> = ok(undefined);

/** Where a shared-store append goes: the position it was decided on, and the session afterwards. */
interface SharedTarget {
  readonly position: number;
  readonly summary: SessionSummary;
  readonly limit?: OpenSessionLimit;
}
/**
 * A shared-store append lost its position to another instance. Never leaves
 * the runtime: the caller catches up from the log and decides again.
 */
const LOG_CONFLICT: MacpError = macpError(
  ErrorCode.INTERNAL_ERROR,
  "the session changed on another instance; catch up and retry",
);
/** Decisions retried after conflicts before the runtime gives up (heavy contention on one session). */
const MAX_SHARED_ATTEMPTS = 64;

// Acks carry int64 times as bigint; consecutive messages usually share a millisecond.
let lastMs = Number.NaN;
let lastMsBig = 0n;
function bigintMs(ms: number): bigint {
  if (ms !== lastMs) {
    lastMs = ms;
    lastMsBig = BigInt(ms);
  }
  return lastMsBig;
}
type MaybeAsync<T> = T | Promise<T>;

function chain<T, U>(value: MaybeAsync<T>, next: (value: T) => MaybeAsync<U>): MaybeAsync<U> {
  return value instanceof Promise ? value.then(next) : next(value);
}

/** Creates a runtime. The options object documents every injected effect. */
export function createRuntime(options: RuntimeOptions): MacpRuntime {
  return new Runtime(options);
}

/** The part of the runtime the session-stream handler drives. */
export interface KernelForStreams {
  readonly limits: RuntimeLimits;
  readonly clock: Clock;
  checkSecurity(envelope: Envelope, identity: Identity): Outcome<Envelope>;
  checkAuthorization(envelope: Envelope, identity: Identity): Outcome<void>;
  checkRateLimit(envelope: Envelope): Outcome<void>;
  dispatch(envelope: Envelope, identity: Identity): MaybeAsync<Outcome<Ack>>;
  /** The session with lazy expiry applied, or undefined. */
  lookupSession(sessionId: string): Promise<Outcome<Session | undefined>>;
  sessionHub(sessionId: string): Hub<SequencedEnvelope>;
  releaseHub(sessionId: string): void;
  readIncoming(sessionId: string, afterSequence: number, upTo: number): Promise<Envelope[]>;
}

class Runtime implements MacpRuntime, KernelForStreams {
  readonly clock: Clock;
  readonly limits: RuntimeLimits;
  private readonly store: SessionStore;
  /** Set when instances share the store: sessions are replicas of the shared log. */
  private readonly shared: SharedSessionStore | undefined;
  private stopFollowing: (() => void) | undefined;
  /** Registry changes made here, written to the shared store in order. */
  private registryWrites: Promise<Outcome<void>> = Promise.resolve(OK_VOID);
  /** Sessions being loaded from the shared log, by id. */
  private readonly loading = new Map<string, Promise<Outcome<Session | undefined>>>();
  private readonly logger: RuntimeLogger;
  private readonly info: RuntimeInfoOptions;
  private readonly modes: ModeRegistry;
  private readonly policies: PolicyRegistry;
  private readonly policiesReadOnly: boolean;
  private readonly strictRecovery: boolean;
  private readonly startLimiter: RateLimiter;
  private readonly messageLimiter: RateLimiter;

  private readonly sessions = new Map<string, Session>();
  /** Ids of sessions no longer in memory; never reusable (D-28). */
  private readonly tombstones = new Set<string>();
  /** SessionStarts whose append is in flight, by session id. */
  private readonly pendingStarts = new Map<string, Promise<unknown>>();
  /** OPEN sessions by initiator, for max_open_sessions. */
  private readonly openByInitiator = new Map<string, Set<Session>>();
  private nextOrdinal = 1;

  private readonly sessionHubs = new Map<string, Hub<SequencedEnvelope>>();
  private readonly lifecycleHub: Hub<SessionLifecycleEvent>;
  private readonly signalHub: Hub<Envelope>;
  private readonly modeRegistryHub: Hub<RegistryChanged>;
  private readonly policyHub: Hub<WatchPoliciesResponse>;
  private readonly rootsHub: Hub<RootsChanged>;
  private readonly openStreams = new Set<SessionStreamHandler>();
  private closed = false;

  constructor(options: RuntimeOptions) {
    this.clock = options.clock;
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.store = options.store ?? createMemoryStore();
    this.shared = isSharedStore(this.store) ? this.store : undefined;
    this.logger = options.logger ?? SILENT_LOGGER;
    this.info = { ...DEFAULT_RUNTIME_INFO, ...options.runtimeInfo };
    this.modes = new ModeRegistry(builtInModes());
    this.policies = new PolicyRegistry();
    for (const policy of options.policies ?? []) {
      const outcome = this.policies.registerDefinition(
        policy,
        policy.registeredAtUnixMs || this.clock.now(),
      );
      if (outcome.isErr()) throw new Error(`policy ${policy.policyId}: ${outcome.error}`);
    }
    this.policiesReadOnly = options.policyRegistryReadOnly ?? false;
    this.strictRecovery = options.strictRecovery ?? false;
    this.startLimiter = new RateLimiter(this.clock, this.limits.sessionStartsPerMinute);
    this.messageLimiter = new RateLimiter(this.clock, this.limits.messagesPerMinute);
    this.lifecycleHub = new Hub(this.limits.lifecycleStreamBuffer, "error");
    this.signalHub = new Hub(this.limits.signalStreamBuffer, "error");
    this.modeRegistryHub = new Hub(this.limits.registryStreamBuffer, "end");
    this.policyHub = new Hub(this.limits.registryStreamBuffer, "end");
    this.rootsHub = new Hub(this.limits.registryStreamBuffer, "end");
  }

  // ---------------------------------------------------------------- Initialize and discovery

  initialize(request: InitializeRequest): Outcome<InitializeResponse> {
    if (request.supportedProtocolVersions.length === 0) {
      return err(macpError(ErrorCode.INVALID_REQUEST, "supported_protocol_versions is empty"));
    }
    if (!request.supportedProtocolVersions.includes(PROTOCOL_VERSION)) {
      return err(
        macpError(
          ErrorCode.UNSUPPORTED_PROTOCOL_VERSION,
          `this runtime speaks protocol version ${PROTOCOL_VERSION} only`,
        ),
      );
    }
    return ok(
      create(InitializeResponseSchema, {
        selectedProtocolVersion: PROTOCOL_VERSION,
        runtimeInfo: {
          name: this.info.name,
          title: this.info.title,
          version: this.info.version,
          description: this.info.description,
          websiteUrl: this.info.websiteUrl,
        },
        capabilities: create(CapabilitiesSchema, {
          sessions: { stream: true, listSessions: true, watchSessions: true },
          cancellation: { cancelSession: true },
          progress: { progress: true },
          manifest: { getManifest: true },
          modeRegistry: { listModes: true, listChanged: true },
          roots: { listRoots: true, listChanged: false },
          policyRegistry: {
            registerPolicy: !this.policiesReadOnly,
            listPolicies: true,
            listChanged: true,
          },
          experimental: { features: { ext_mode_lifecycle: "true" } },
        }),
        supportedModes: this.modes.allNames(),
        instructions:
          'Authenticate every call with `authorization: Bearer <token>`. Send envelopes with the unary Send RPC (or StreamSession to follow a session live); every envelope needs macp_version "1.0" and a message_id unique within its session.',
      }),
    );
  }

  getManifest(agentId: string): Outcome<AgentManifest> {
    if (agentId !== "" && agentId !== this.info.name) {
      return err(macpError(ErrorCode.NOT_FOUND, `no manifest for agent "${agentId}"`));
    }
    return ok(
      create(AgentManifestSchema, {
        agentId: this.info.name,
        title: this.info.title,
        description: this.info.description,
        supportedModes: this.modes.allNames(),
        inputContentTypes: ["application/macp-envelope+proto"],
        outputContentTypes: ["application/macp-envelope+proto"],
      }),
    );
  }

  listModes(): ModeDescriptor[] {
    return this.modes.listStandards();
  }

  listExtModes(): ModeDescriptor[] {
    return this.modes.listExtensions();
  }

  listRoots(): Root[] {
    return [];
  }

  // ---------------------------------------------------------------- Send

  send(envelope: Envelope | undefined, caller: Caller): Promise<Outcome<Ack>> {
    try {
      const result = this.sendNow(envelope, caller);
      return result instanceof Promise ? result : Promise.resolve(result);
    } catch (cause) {
      return Promise.reject(cause);
    }
  }

  sendNow(envelope: Envelope | undefined, caller: Caller): MaybeAsync<Outcome<Ack>> {
    if (envelope === undefined) {
      return err(macpError(ErrorCode.INVALID_REQUEST, "SendRequest.envelope is required"));
    }
    const shape = checkEnvelopeShape(envelope, this.limits.maxPayloadBytes);
    if (shape.isErr()) return err(shape.error);
    if (!isAuthenticated(caller)) {
      return err(macpError(ErrorCode.UNAUTHENTICATED, caller.unauthenticated));
    }
    let secured = envelope;
    if (envelope.sender !== caller.sender) {
      const checked = this.checkSecurity(envelope, caller);
      if (checked.isErr()) return err(checked.error);
      secured = checked.value;
    }
    const authorized = this.checkAuthorization(secured, caller);
    if (authorized.isErr()) return err(authorized.error);
    const limited = this.checkRateLimit(secured);
    if (limited.isErr()) return err(limited.error);
    return this.dispatch(secured, caller);
  }

  /** ENV-8: the sender is the authenticated identity; a different claim is refused. */
  checkSecurity(envelope: Envelope, identity: Identity): Outcome<Envelope> {
    if (envelope.sender === identity.sender) return ok(envelope);
    if (envelope.sender !== "") {
      return err(
        macpError(
          ErrorCode.UNAUTHENTICATED,
          `sender "${envelope.sender}" does not match the authenticated identity`,
        ),
      );
    }
    return ok({ ...envelope, sender: identity.sender });
  }

  /** ENV-9. Ambient Signals and Progress carry no mode, so allowed_modes does not apply to them. */
  checkAuthorization(envelope: Envelope, identity: Identity): Outcome<void> {
    if (envelope.messageType === "SessionStart" && !identity.canStartSessions) {
      return err(macpError(ErrorCode.FORBIDDEN, "this identity may not start sessions"));
    }
    if (identity.allowedModes !== null && !isBlank(envelope.mode)) {
      if (!identity.allowedModes.has(envelope.mode)) {
        return err(
          macpError(ErrorCode.FORBIDDEN, `this identity may not use mode "${envelope.mode}"`),
        );
      }
    }
    return OK_VOID;
  }

  /** ENV-10: SessionStarts and everything else have separate per-sender budgets. */
  checkRateLimit(envelope: Envelope): Outcome<void> {
    const limiter =
      envelope.messageType === "SessionStart" ? this.startLimiter : this.messageLimiter;
    if (limiter.tryAcquire(envelope.sender)) return OK_VOID;
    return err(
      macpError(
        ErrorCode.RATE_LIMITED,
        envelope.messageType === "SessionStart"
          ? `at most ${this.limits.sessionStartsPerMinute} SessionStarts per minute`
          : `at most ${this.limits.messagesPerMinute} messages per minute`,
      ),
    );
  }

  /** ENV-12..14: the kernel proper, after every security check. */
  dispatch(envelope: Envelope, identity: Identity): MaybeAsync<Outcome<Ack>> {
    if (this.closed) {
      return err(macpError(ErrorCode.INTERNAL_ERROR, "the runtime is shutting down"));
    }
    switch (envelope.messageType) {
      case "SessionStart":
        if (this.shared !== undefined) return this.startShared(this.shared, envelope, identity);
        return this.startSession(envelope, identity);
      case "Signal":
      case "Progress":
        return this.acceptAmbient(envelope);
      default:
        if (isRuntimeOnlyType(envelope.messageType)) {
          return err(
            macpError(
              ErrorCode.INVALID_ENVELOPE,
              `${envelope.messageType} is written by the runtime only; use the matching RPC`,
            ),
          );
        }
        return this.sessionMessage(envelope);
    }
  }

  // ---------------------------------------------------------------- Signals and Progress

  private acceptAmbient(envelope: Envelope): MaybeAsync<Outcome<Ack>> {
    if (envelope.payload.length > 0) {
      try {
        if (envelope.messageType === "Signal") {
          const signal = fromBinary(SignalPayloadSchema, envelope.payload);
          if (isBlank(signal.signalType)) {
            return err(macpError(ErrorCode.INVALID_ENVELOPE, "signal_type is required"));
          }
        } else {
          fromBinary(ProgressPayloadSchema, envelope.payload);
        }
      } catch {
        return err(
          macpError(
            ErrorCode.INVALID_ENVELOPE,
            `payload is not a valid ${envelope.messageType}Payload`,
          ),
        );
      }
    }
    if (this.shared !== undefined) {
      // Every instance, this one included, publishes it when the shared feed delivers it,
      // so all watchers see one order.
      return this.shared.publishAmbient(envelope).then(
        () => ok(this.ack(envelope, SessionState.OPEN, false)),
        (cause: unknown) => this.appendFailed(envelope.sessionId, cause),
      );
    }
    this.signalHub.publish(envelope);
    return ok(this.ack(envelope, SessionState.OPEN, false));
  }

  // ---------------------------------------------------------------- SessionStart

  private startSession(envelope: Envelope, identity: Identity): MaybeAsync<Outcome<Ack>> {
    const idCheck = checkSessionId(envelope.sessionId);
    if (idCheck.isErr()) return err(idCheck.error);
    const entry = this.modes.get(envelope.mode);
    if (entry === undefined) {
      return err(
        macpError(ErrorCode.MODE_NOT_SUPPORTED, `mode "${envelope.mode}" is not registered`),
      );
    }
    if (envelope.payload.length === 0) {
      return err(macpError(ErrorCode.INVALID_ENVELOPE, "SessionStart needs a payload"));
    }
    let start: SessionStartPayload;
    try {
      start = fromBinary(SessionStartPayloadSchema, envelope.payload);
    } catch {
      return err(macpError(ErrorCode.INVALID_ENVELOPE, "payload is not a SessionStartPayload"));
    }
    if (entry.strict) {
      const strict = checkStrictStart(start);
      if (strict.isErr()) return err(strict.error);
    }
    const descriptorVersion = entry.descriptor.modeVersion;
    if (
      descriptorVersion !== "" &&
      start.modeVersion !== "" &&
      start.modeVersion !== descriptorVersion
    ) {
      return err(
        macpError(
          ErrorCode.INVALID_ENVELOPE,
          `mode_version "${start.modeVersion}" does not match the registered "${descriptorVersion}"`,
        ),
      );
    }
    const ttl = checkTtl(start.ttlMs);
    if (ttl.isErr()) return err(ttl.error);

    const existing = this.sessions.get(envelope.sessionId);
    if (existing !== undefined) {
      return withLock(existing, () =>
        existing.seen.has(envelope.messageId)
          ? ok(this.ack(envelope, existing.state, true))
          : err(this.alreadyExists(envelope.sessionId)),
      );
    }
    if (this.tombstones.has(envelope.sessionId)) return err(this.alreadyExists(envelope.sessionId));
    const pending = this.pendingStarts.get(envelope.sessionId);
    if (pending !== undefined) {
      // Another start for this id is being persisted; judge this one once it is settled.
      return pending.then(() => this.startSession(envelope, identity));
    }

    const policy = this.policies.resolveForSession(start.policyVersion, envelope.mode);
    if (policy.isErr()) return err(policy.error);
    const modeVersion = start.modeVersion !== "" ? start.modeVersion : descriptorVersion;
    const view: SessionView = {
      sessionId: envelope.sessionId,
      mode: envelope.mode,
      initiator: identity.sender,
      participants: start.participants,
      modeVersion,
      configurationVersion: start.configurationVersion,
      policyVersion: policy.value.policyId,
      policy: policy.value,
    };
    const initial = entry.handler.onSessionStart(view, start);
    if (initial.isErr()) return err(initial.error);
    if (identity.maxOpenSessions !== null && this.shared === undefined) {
      const open = this.countOpenSessions(identity.sender);
      if (open >= identity.maxOpenSessions) {
        return err(
          macpError(
            ErrorCode.RATE_LIMITED,
            `this identity already has ${open} open sessions (limit ${identity.maxOpenSessions})`,
          ),
        );
      }
    }

    const now = this.clock.now();
    const binding: SessionBinding = {
      modeVersion,
      policy: policy.value,
      modeDescriptor: entry.descriptor,
      strict: entry.strict,
      expiresAtMs: this.deadlineFor(envelope.timestampUnixMs, ttl.value, now),
      maxSuspendMs:
        start.maxSuspendMs > 0n ? Number(start.maxSuspendMs) : this.limits.defaultMaxSuspendMs,
      semanticsRev: SEMANTICS_REV,
    };
    const record: LogRecord = { kind: "incoming", envelope, receivedAtMs: now, binding };
    const commit = (): Outcome<Ack> => {
      const session = this.buildSession(view, entry, start, binding, now, initial.value);
      session.seen.add(envelope.messageId);
      session.incomingCount = 1;
      session.logLength = 1;
      this.insertSession(session);
      this.publishEnvelope(session, envelope);
      this.emitLifecycle(EventType.CREATED, session, now);
      return ok(this.ack(envelope, SessionState.OPEN, false, now));
    };
    const appended = this.append(envelope.sessionId, record, {
      position: 0,
      summary: { initiator: identity.sender, open: true, expiresAtMs: binding.expiresAtMs },
      limit:
        identity.maxOpenSessions === null
          ? undefined
          : { max: identity.maxOpenSessions, nowMs: now },
    });
    if (!(appended instanceof Promise)) return appended.isErr() ? err(appended.error) : commit();
    const settled = appended.then((result) => {
      if (result.isOk()) return commit();
      // Another instance started this id first: judge this start against its session.
      if (result.error === LOG_CONFLICT) return this.restartAfterConflict(envelope, identity);
      return err(result.error);
    });
    this.pendingStarts.set(envelope.sessionId, settled);
    void settled.finally(() => this.pendingStarts.delete(envelope.sessionId));
    return settled;
  }

  /** A start refused for an unknown mode or policy is judged again once the shared registry is current. */
  private async startShared(
    shared: SharedSessionStore,
    envelope: Envelope,
    identity: Identity,
  ): Promise<Outcome<Ack>> {
    const started = await this.startSession(envelope, identity);
    if (
      started.isOk() ||
      (started.error.code !== ErrorCode.MODE_NOT_SUPPORTED &&
        started.error.code !== ErrorCode.UNKNOWN_POLICY_VERSION)
    ) {
      return started;
    }
    try {
      await shared.syncRegistry();
    } catch (cause) {
      return this.appendFailed(envelope.sessionId, cause);
    }
    return this.startSession(envelope, identity);
  }

  private async restartAfterConflict(
    envelope: Envelope,
    identity: Identity,
  ): Promise<Outcome<Ack>> {
    const loaded = await this.loadShared(envelope.sessionId, false);
    if (loaded.isErr()) return err(loaded.error);
    if (loaded.value === undefined) return err(this.alreadyExists(envelope.sessionId));
    return this.startSession(envelope, identity);
  }

  /** core.md D-3: trust the client's timestamp only within the allowed skew. */
  private deadlineFor(timestampUnixMs: bigint, ttlMs: number, now: number): number {
    const claimed = Number(timestampUnixMs);
    const base =
      claimed > 0 && Math.abs(claimed - now) <= this.limits.timestampSkewMs ? claimed : now;
    return base + ttlMs;
  }

  private buildSession(
    view: SessionView,
    entry: ModeEntry,
    start: SessionStartPayload,
    binding: SessionBinding,
    startedAtMs: number,
    modeState: unknown,
  ): Session {
    return new Session(
      view,
      entry.handler,
      binding.modeDescriptor,
      binding.strict,
      startedAtMs,
      binding.expiresAtMs,
      binding.maxSuspendMs,
      start.contextId,
      extensionKeysOf(start),
      this.nextOrdinal++,
      modeState,
    );
  }

  private insertSession(session: Session): void {
    this.sessions.set(session.view.sessionId, session);
    this.trackOpen(session);
  }

  private alreadyExists(sessionId: string): MacpError {
    return macpError(ErrorCode.SESSION_ALREADY_EXISTS, `session "${sessionId}" already exists`);
  }

  private countOpenSessions(initiator: string): number {
    const open = this.openByInitiator.get(initiator);
    if (open === undefined) return 0;
    const now = this.clock.now();
    let count = 0;
    for (const session of open) if (now <= session.expiresAtMs) count++;
    return count;
  }

  /** Keeps openByInitiator in step with a session's state. Call after every transition. */
  private trackOpen(session: Session): void {
    const initiator = session.view.initiator;
    let open = this.openByInitiator.get(initiator);
    if (session.state === SessionState.OPEN) {
      if (open === undefined) {
        open = new Set();
        this.openByInitiator.set(initiator, open);
      }
      open.add(session);
    } else if (open !== undefined) {
      open.delete(session);
      if (open.size === 0) this.openByInitiator.delete(initiator);
    }
  }

  // ---------------------------------------------------------------- Session-scoped messages

  private sessionMessage(envelope: Envelope): MaybeAsync<Outcome<Ack>> {
    const session = this.sessions.get(envelope.sessionId);
    if (this.shared !== undefined) return this.sharedSessionMessage(session, envelope);
    if (session === undefined) {
      const pending = this.pendingStarts.get(envelope.sessionId);
      if (pending !== undefined) return pending.then(() => this.sessionMessage(envelope));
      return err(
        macpError(ErrorCode.SESSION_NOT_FOUND, `session "${envelope.sessionId}" not found`),
      );
    }
    if (session.lockTail !== undefined) {
      return withLock(session, () => this.processInSession(session, envelope, false));
    }
    // Idle session: run inline (what withLock does) without a closure per message.
    const result = this.processInSession(session, envelope, false);
    return result instanceof Promise ? holdLockUntil(session, result) : result;
  }

  /** MSG-2..MSG-13, inside the session's lock. */
  private processInSession(
    session: Session,
    envelope: Envelope,
    synthetic: boolean,
  ): MaybeAsync<Outcome<Ack>> {
    if (session.seen.has(envelope.messageId)) return ok(this.ack(envelope, session.state, true));
    if (envelope.mode !== session.view.mode) {
      return err(
        macpError(
          ErrorCode.INVALID_ENVELOPE,
          `mode "${envelope.mode}" does not match the session's mode "${session.view.mode}"`,
        ),
      );
    }
    const now = this.clock.now();
    if (session.state === SessionState.OPEN && now > session.expiresAtMs) {
      return chain(this.expire(session, now), (expired) =>
        expired.isErr() ? err(expired.error) : err(this.notOpen(session)),
      );
    }
    if (session.state !== SessionState.OPEN) return err(this.notOpen(session));
    if (this.modes.get(session.view.mode) === undefined) {
      return err(
        macpError(
          ErrorCode.MODE_NOT_SUPPORTED,
          `mode "${session.view.mode}" is no longer registered`,
        ),
      );
    }
    const ctx: MessageContext = { session: session.view, acceptedAtMs: now, synthetic };
    const authorized = session.handler.authorizeSender(ctx, session.modeState, envelope);
    if (authorized.isErr()) return err(authorized.error);
    const step = session.handler.onMessage(ctx, session.modeState, envelope);
    if (step.isErr()) return err(step.error);
    const appended = this.append(
      session.view.sessionId,
      { kind: "incoming", envelope, receivedAtMs: now },
      targetFor(session, step.value.resolution === undefined, session.expiresAtMs),
    );
    if (appended instanceof Promise) {
      return appended.then((result) => this.commitAccepted(session, envelope, step, now, result));
    }
    return this.commitAccepted(session, envelope, step, now, appended);
  }

  /** Once the append is settled: the state changes only if it was durable. */
  private commitAccepted(
    session: Session,
    envelope: Envelope,
    step: Ok<ModeStep<unknown>, MacpError>,
    now: number,
    appended: Outcome<void>,
  ): Outcome<Ack> {
    if (appended.isErr()) return err(appended.error);
    session.logLength++;
    this.applyAccepted(session, envelope, step.value, now, true);
    return ok(this.ack(envelope, session.state, false, now));
  }

  /** Commits an accepted message: shared by live processing and replay. */
  private applyAccepted(
    session: Session,
    envelope: Envelope,
    step: ModeStep<unknown>,
    atMs: number,
    live: boolean,
  ): void {
    session.seen.add(envelope.messageId);
    session.incomingCount++;
    session.recordActivity(envelope.sender, atMs);
    session.modeState = step.state;
    if (step.resolution !== undefined) {
      session.resolution = step.resolution;
      this.transition(session, SessionState.RESOLVED, atMs, live ? EventType.RESOLVED : undefined);
    }
    if (live) this.publishEnvelope(session, envelope);
  }

  private notOpen(session: Session): MacpError {
    return macpError(
      ErrorCode.SESSION_NOT_OPEN,
      `session "${session.view.sessionId}" is ${SessionState[session.state]}`,
    );
  }

  // ---------------------------------------------------------------- Lifecycle transitions

  private transition(
    session: Session,
    state: SessionState,
    atMs: number,
    event: EventType | undefined,
  ): void {
    session.state = state;
    if (session.isTerminal) {
      session.endedAtMs = atMs;
      session.suspendedAtMs = undefined;
    }
    this.trackOpen(session);
    if (event !== undefined) this.emitLifecycle(event, session, this.clock.now());
  }

  /** Appends TtlExpired and moves the session to EXPIRED (LC-5). */
  private expire(session: Session, now: number): MaybeAsync<Outcome<void>> {
    return chain(this.appendInternal(session, "TtlExpired", new Uint8Array(0), now), (result) => {
      if (result.isErr()) return result;
      this.applyExpire(session, now, true);
      return ok(undefined);
    });
  }

  private applyExpire(session: Session, atMs: number, live: boolean): void {
    if (session.suspendedAtMs !== undefined) {
      session.suspendedTotalMs = session.suspendedTimeAt(atMs);
    }
    this.transition(session, SessionState.EXPIRED, atMs, live ? EventType.EXPIRED : undefined);
  }

  private applySuspend(session: Session, atMs: number, live: boolean): void {
    session.suspendedAtMs = atMs;
    this.transition(session, SessionState.SUSPENDED, atMs, live ? EventType.SUSPENDED : undefined);
  }

  /** LC-11: adds the suspended time to the deadline, or expires when the cap is crossed. */
  private applyResume(session: Session, atMs: number, live: boolean): "resumed" | "expired" {
    const suspendedAt = session.suspendedAtMs ?? atMs;
    const duration = Math.max(0, atMs - suspendedAt);
    session.suspendedTotalMs += duration;
    session.suspendedAtMs = undefined;
    if (session.suspendedTotalMs > session.maxSuspendMs) {
      this.transition(session, SessionState.EXPIRED, atMs, live ? EventType.EXPIRED : undefined);
      return "expired";
    }
    session.expiresAtMs += duration;
    this.transition(session, SessionState.OPEN, atMs, live ? EventType.RESUMED : undefined);
    return "resumed";
  }

  private applyCancel(session: Session, atMs: number, live: boolean): void {
    if (session.suspendedAtMs !== undefined) {
      session.suspendedTotalMs = session.suspendedTimeAt(atMs);
    }
    this.transition(session, SessionState.CANCELLED, atMs, live ? EventType.CANCELLED : undefined);
  }

  /** Lazy expiry on lookups (LC-5b, LC-13): OPEN past the deadline, or SUSPENDED past the cap. */
  private expireIfDue(session: Session): MaybeAsync<Outcome<void>> {
    const now = this.clock.now();
    const overdue =
      (session.state === SessionState.OPEN && now > session.expiresAtMs) ||
      (session.state === SessionState.SUSPENDED &&
        session.suspendedTimeAt(now) > session.maxSuspendMs);
    return overdue ? this.expire(session, now) : ok(undefined);
  }

  async lookupSession(sessionId: string): Promise<Outcome<Session | undefined>> {
    const pending = this.pendingStarts.get(sessionId);
    if (pending !== undefined) await pending;
    if (this.shared !== undefined) return this.lookupShared(sessionId);
    const session = this.sessions.get(sessionId);
    if (session === undefined) return ok(undefined);
    const expired = await withLock(session, () => this.expireIfDue(session));
    return expired.isErr() ? err(expired.error) : ok(session);
  }

  /** The replica brought up to the log's latest state, with lazy expiry applied. */
  private async lookupShared(sessionId: string): Promise<Outcome<Session | undefined>> {
    const loaded = await this.loadShared(sessionId, true);
    if (loaded.isErr() || loaded.value === undefined) return loaded;
    const session = loaded.value;
    const fresh = await withLock(session, () =>
      this.decideShared(session, () => this.refresh(session)),
    );
    return fresh.isErr() ? err(fresh.error) : ok(session);
  }

  /** Catches a replica up, then expires it if due. */
  private async refresh(session: Session): Promise<Outcome<void>> {
    const caughtUp = await this.catchUp(session);
    return caughtUp.isErr() ? err(caughtUp.error) : this.expireIfDue(session);
  }

  // ---------------------------------------------------------------- GetSession, ListSessions

  async getSession(sessionId: string, caller: Caller): Promise<Outcome<SessionMetadata>> {
    if (!isAuthenticated(caller)) {
      return err(macpError(ErrorCode.UNAUTHENTICATED, caller.unauthenticated));
    }
    const found = await this.lookupSession(sessionId);
    if (found.isErr()) return err(found.error);
    const session = found.value;
    if (session === undefined) {
      return err(macpError(ErrorCode.SESSION_NOT_FOUND, `session "${sessionId}" not found`));
    }
    if (!session.isVisibleTo(caller)) {
      return err(macpError(ErrorCode.FORBIDDEN, "session access denied"));
    }
    return ok(session.toMetadata());
  }

  listSessions(options: ListSessionsOptions, caller: Caller): Outcome<ListSessionsResponse> {
    if (!isAuthenticated(caller)) {
      return err(macpError(ErrorCode.UNAUTHENTICATED, caller.unauthenticated));
    }
    if (options.pageSize < 0) {
      return err(macpError(ErrorCode.INVALID_REQUEST, "page_size must not be negative"));
    }
    const pageSize = Math.min(
      options.pageSize === 0 ? this.limits.defaultPageSize : options.pageSize,
      this.limits.maxPageSize,
    );
    let after = 0;
    if (options.pageToken !== "") {
      const decoded = decodePageToken(options.pageToken);
      if (decoded === undefined) {
        return err(
          macpError(ErrorCode.INVALID_REQUEST, "page_token is not a token this runtime issued"),
        );
      }
      after = decoded;
    }
    const sessions: SessionMetadata[] = [];
    let last = 0;
    let more = false;
    // Map iteration follows insertion, which is creation order (ordinals ascend).
    for (const session of this.sessions.values()) {
      if (session.ordinal <= after) continue;
      if (sessions.length === pageSize) {
        more = true;
        break;
      }
      sessions.push(session.toMetadata());
      last = session.ordinal;
    }
    return ok(
      create(ListSessionsResponseSchema, {
        sessions,
        nextPageToken: more ? encodePageToken(last) : "",
      }),
    );
  }

  // ---------------------------------------------------------------- Cancel, Suspend, Resume

  cancelSession(sessionId: string, reason: string, caller: Caller): Promise<Outcome<Ack>> {
    return this.control(sessionId, caller, async (session, identity) => {
      // Cancelling a finished session succeeds with its state (LC-17): SDKs cancel in `finally`.
      if (session.isTerminal) return ok(this.controlAck(sessionId, session.state));
      const payload = toBinary(
        SessionCancelPayloadSchema,
        create(SessionCancelPayloadSchema, { reason, cancelledBy: identity.sender }),
      );
      return this.recordControl(session, "SessionCancel", payload, (now) => {
        this.applyCancel(session, now, true);
        return undefined;
      });
    });
  }

  suspendSession(sessionId: string, reason: string, caller: Caller): Promise<Outcome<Ack>> {
    return this.control(sessionId, caller, async (session, identity) => {
      if (session.state !== SessionState.OPEN) return err(this.notOpen(session));
      const payload = toBinary(
        SessionSuspendPayloadSchema,
        create(SessionSuspendPayloadSchema, { reason, suspendedBy: identity.sender }),
      );
      return this.recordControl(session, "SessionSuspend", payload, (now) => {
        this.applySuspend(session, now, true);
        return undefined;
      });
    });
  }

  resumeSession(sessionId: string, reason: string, caller: Caller): Promise<Outcome<Ack>> {
    return this.control(sessionId, caller, async (session, identity) => {
      if (session.state !== SessionState.SUSPENDED) return err(this.notOpen(session));
      // banked_ms follows the spec (remaining TTL at suspension); the new deadline is the same
      // either way (core.md LC-15).
      const now = this.clock.now();
      const bankedMs = Math.max(0, session.expiresAtMs - (session.suspendedAtMs ?? now));
      const payload = toBinary(
        SessionResumePayloadSchema,
        create(SessionResumePayloadSchema, {
          reason,
          resumedBy: identity.sender,
          bankedMs: BigInt(bankedMs),
        }),
      );
      return this.recordControl(session, "SessionResume", payload, (at) =>
        this.applyResume(session, at, true) === "expired"
          ? macpError(
              ErrorCode.SESSION_NOT_OPEN,
              `session "${sessionId}" exceeded its suspension budget and expired`,
            )
          : undefined,
      );
    });
  }

  /**
   * Appends a runtime record for a control RPC, then applies it. `apply` may
   * report that the transition ended differently (a resume past the cap).
   */
  private async recordControl(
    session: Session,
    type: InternalRecordType,
    payload: Uint8Array,
    apply: (now: number) => MacpError | undefined,
  ): Promise<Outcome<Ack>> {
    const now = this.clock.now();
    const appended = await this.appendInternal(session, type, payload, now);
    if (appended.isErr()) return err(appended.error);
    const refused = apply(now);
    if (refused !== undefined) return err(refused);
    return ok(this.controlAck(session.view.sessionId, session.state, now));
  }

  /** CTL-2: authenticate, look up with lazy expiry, authorize, then act under the session lock. */
  private async control(
    sessionId: string,
    caller: Caller,
    act: (session: Session, identity: Identity) => Promise<Outcome<Ack>>,
  ): Promise<Outcome<Ack>> {
    if (!isAuthenticated(caller)) {
      return err(macpError(ErrorCode.UNAUTHENTICATED, caller.unauthenticated));
    }
    const found = await this.lookupSession(sessionId);
    if (found.isErr()) return err(found.error);
    const session = found.value;
    if (session === undefined) {
      return err(macpError(ErrorCode.SESSION_NOT_FOUND, `Session '${sessionId}' not found`));
    }
    if (
      caller.sender !== session.view.initiator &&
      !isCommitmentAuthority(session.view, caller.sender)
    ) {
      return err(
        macpError(
          ErrorCode.FORBIDDEN,
          "only the initiator or a holder of commitment authority may control this session",
        ),
      );
    }
    if (this.shared !== undefined) {
      return withLock(session, () =>
        this.decideShared(session, async () => {
          const fresh = await this.refresh(session);
          return fresh.isErr() ? err(fresh.error) : act(session, caller);
        }),
      );
    }
    return withLock(session, async () => {
      const expired = await this.expireIfDue(session);
      if (expired.isErr()) return err(expired.error);
      return act(session, caller);
    });
  }

  private controlAck(sessionId: string, state: SessionState, now = this.clock.now()): Ack {
    return {
      $typeName: "macp.v1.Ack",
      ok: true,
      duplicate: false,
      messageId: "",
      sessionId,
      acceptedAtUnixMs: BigInt(now),
      sessionState: state,
    };
  }

  // ---------------------------------------------------------------- Persistence

  private append(
    sessionId: string,
    record: LogRecord,
    target: SharedTarget,
  ): MaybeAsync<Outcome<void>> {
    if (this.shared !== undefined) return this.appendShared(this.shared, sessionId, record, target);
    try {
      const appended = this.store.append(sessionId, record);
      if (appended instanceof Promise) {
        return appended.then(
          () => OK_VOID,
          (cause: unknown) => this.appendFailed(sessionId, cause),
        );
      }
      return OK_VOID;
    } catch (cause) {
      return this.appendFailed(sessionId, cause);
    }
  }

  private async appendShared(
    shared: SharedSessionStore,
    sessionId: string,
    record: LogRecord,
    target: SharedTarget,
  ): Promise<Outcome<void>> {
    try {
      const outcome = await shared.appendAt(
        sessionId,
        target.position,
        record,
        target.summary,
        target.limit,
      );
      switch (outcome.kind) {
        case "appended":
          return OK_VOID;
        case "conflict":
          return err(LOG_CONFLICT);
        case "limit":
          return err(
            macpError(
              ErrorCode.RATE_LIMITED,
              `this identity already has ${outcome.open} open sessions (limit ${target.limit?.max})`,
            ),
          );
      }
    } catch (cause) {
      return this.appendFailed(sessionId, cause);
    }
  }

  private appendFailed(sessionId: string, cause: unknown): Outcome<never> {
    this.logger.error("storage append failed", {
      sessionId,
      error: cause instanceof Error ? cause.message : String(cause),
    });
    return err(macpError(ErrorCode.INTERNAL_ERROR, "the message could not be stored durably"));
  }

  private appendInternal(
    session: Session,
    type: InternalRecordType,
    payload: Uint8Array,
    now: number,
  ): MaybeAsync<Outcome<void>> {
    const record: LogRecord = { kind: "internal", type, receivedAtMs: now, payload };
    return chain(
      this.append(session.view.sessionId, record, internalTarget(session, type, now)),
      (appended) => {
        if (appended.isOk()) session.logLength++;
        return appended;
      },
    );
  }

  async readHistory(sessionId: string): Promise<Envelope[]> {
    return this.readIncoming(sessionId, 0, Number.MAX_SAFE_INTEGER);
  }

  /** Incoming envelopes with sequence in (afterSequence, upTo]. */
  async readIncoming(sessionId: string, afterSequence: number, upTo: number): Promise<Envelope[]> {
    const records = (await this.store.read(sessionId)) ?? [];
    const out: Envelope[] = [];
    let sequence = 0;
    for (const record of records) {
      if (record.kind !== "incoming") continue;
      sequence++;
      if (sequence > upTo) break;
      if (sequence > afterSequence) out.push(record.envelope);
    }
    return out;
  }

  // ---------------------------------------------------------------- Streams and watches

  sessionHub(sessionId: string): Hub<SequencedEnvelope> {
    let hub = this.sessionHubs.get(sessionId);
    if (hub === undefined) {
      hub = new Hub(this.limits.sessionStreamBuffer, "error");
      this.sessionHubs.set(sessionId, hub);
    }
    return hub;
  }

  releaseHub(sessionId: string): void {
    const hub = this.sessionHubs.get(sessionId);
    if (hub !== undefined && hub.size === 0) this.sessionHubs.delete(sessionId);
  }

  private publishEnvelope(session: Session, envelope: Envelope): void {
    if (this.sessionHubs.size === 0) return;
    this.sessionHubs
      .get(session.view.sessionId)
      ?.publish({ sequence: session.incomingCount, envelope });
  }

  private emitLifecycle(type: EventType, session: Session, observedAtMs: number): void {
    if (this.lifecycleHub.size === 0) return;
    this.lifecycleHub.publish(
      create(SessionLifecycleEventSchema, {
        eventType: type,
        session: session.toMetadata(),
        observedAtUnixMs: BigInt(observedAtMs),
      }),
    );
  }

  openSessionStream(caller: Caller, signal?: AbortSignal): Outcome<SessionStream> {
    if (!isAuthenticated(caller)) {
      return err(macpError(ErrorCode.UNAUTHENTICATED, caller.unauthenticated));
    }
    const handler: SessionStreamHandler = new SessionStreamHandler(this, caller, signal, () =>
      this.openStreams.delete(handler),
    );
    if (this.closed) handler.end();
    else this.openStreams.add(handler);
    return ok(handler);
  }

  watchSessions(
    caller: Caller,
    signal?: AbortSignal,
  ): Outcome<AsyncIterable<SessionLifecycleEvent>> {
    if (!isAuthenticated(caller)) {
      return err(macpError(ErrorCode.UNAUTHENTICATED, caller.unauthenticated));
    }
    const initial = [...this.sessions.values()].map((session) =>
      create(SessionLifecycleEventSchema, {
        eventType: EventType.CREATED,
        session: session.toMetadata(),
        observedAtUnixMs: BigInt(session.startedAtMs),
      }),
    );
    return ok(this.subscribeTo(this.lifecycleHub, signal, initial));
  }

  watchSignals(caller: Caller, signal?: AbortSignal): Outcome<AsyncIterable<Envelope>> {
    if (!isAuthenticated(caller)) {
      return err(macpError(ErrorCode.UNAUTHENTICATED, caller.unauthenticated));
    }
    return ok(this.subscribeTo(this.signalHub, signal, []));
  }

  watchModeRegistry(signal?: AbortSignal): AsyncIterable<RegistryChanged> {
    return this.subscribeTo(this.modeRegistryHub, signal, [this.modesChanged()]);
  }

  watchRoots(signal?: AbortSignal): AsyncIterable<RootsChanged> {
    return this.subscribeTo(this.rootsHub, signal, [
      create(RootsChangedSchema, { observedAtUnixMs: BigInt(this.clock.now()) }),
    ]);
  }

  watchPolicies(signal?: AbortSignal): AsyncIterable<WatchPoliciesResponse> {
    return this.subscribeTo(this.policyHub, signal, [this.policySnapshot()]);
  }

  private subscribeTo<T>(
    hub: Hub<T>,
    signal: AbortSignal | undefined,
    initial: T[],
  ): Subscription<T> {
    const subscription = hub.subscribe(signal, initial);
    if (this.closed) subscription.end();
    return subscription;
  }

  private modesChanged(): RegistryChanged {
    return create(RegistryChangedSchema, {
      registry: "modes",
      observedAtUnixMs: BigInt(this.clock.now()),
    });
  }

  private policySnapshot(): WatchPoliciesResponse {
    return create(WatchPoliciesResponseSchema, {
      descriptors: this.policies.list("").map(policyDescriptorOf),
      observedAtUnixMs: BigInt(this.clock.now()),
    });
  }

  // ---------------------------------------------------------------- Mode registry

  registerExtMode(
    descriptor: ModeDescriptor | undefined,
    caller: Caller,
  ): Outcome<RegistryOutcome> {
    return this.manageModes(caller, () => {
      if (descriptor === undefined) {
        return err(macpError(ErrorCode.INVALID_REQUEST, "mode_descriptor is required"));
      }
      return this.shareIfOk(this.modes.register(descriptor), { kind: "registerMode", descriptor });
    });
  }

  unregisterExtMode(mode: string, caller: Caller): Outcome<RegistryOutcome> {
    return this.manageModes(caller, () =>
      this.shareIfOk(this.modes.unregister(mode), { kind: "unregisterMode", mode }),
    );
  }

  promoteMode(mode: string, promotedName: string, caller: Caller): Outcome<RegistryOutcome> {
    return this.manageModes(caller, () =>
      this.shareIfOk(this.modes.promote(mode, promotedName), {
        kind: "promoteMode",
        mode,
        promotedName,
      }),
    );
  }

  private manageModes(
    caller: Caller,
    change: () => Outcome<RegistryOutcome>,
  ): Outcome<RegistryOutcome> {
    const allowed = this.registryAdmin(caller);
    if (allowed.isErr()) return err(allowed.error);
    const outcome = change();
    if (outcome.isOk() && outcome.value.ok) this.modeRegistryHub.publish(this.modesChanged());
    return outcome;
  }

  private registryAdmin(caller: Caller): Outcome<Identity> {
    if (!isAuthenticated(caller)) {
      return err(macpError(ErrorCode.UNAUTHENTICATED, caller.unauthenticated));
    }
    if (!caller.canManageModeRegistry) {
      return err(macpError(ErrorCode.FORBIDDEN, "this identity may not manage the registries"));
    }
    return ok(caller);
  }

  // ---------------------------------------------------------------- Policy registry

  registerPolicy(
    descriptor: PolicyDescriptor | undefined,
    caller: Caller,
  ): Outcome<RegistryOutcome> {
    return this.managePolicies(caller, () => {
      if (descriptor === undefined) {
        return err(macpError(ErrorCode.INVALID_REQUEST, "policy_descriptor is required"));
      }
      const registeredAtMs = this.clock.now();
      return this.shareIfOk(registryOutcome(this.policies.register(descriptor, registeredAtMs)), {
        kind: "registerPolicy",
        descriptor,
        registeredAtMs,
      });
    });
  }

  unregisterPolicy(policyId: string, caller: Caller): Outcome<RegistryOutcome> {
    return this.managePolicies(caller, () =>
      this.shareIfOk(registryOutcome(this.policies.unregister(policyId)), {
        kind: "unregisterPolicy",
        policyId,
      }),
    );
  }

  private managePolicies(
    caller: Caller,
    change: () => Outcome<RegistryOutcome>,
  ): Outcome<RegistryOutcome> {
    if (this.policiesReadOnly) {
      return err(
        macpError(
          ErrorCode.READ_ONLY,
          "the policy registry is read-only (loaded from a directory)",
        ),
      );
    }
    const allowed = this.registryAdmin(caller);
    if (allowed.isErr()) return err(allowed.error);
    const outcome = change();
    if (outcome.isOk() && outcome.value.ok) this.policyHub.publish(this.policySnapshot());
    return outcome;
  }

  registryCommitted(): Promise<Outcome<void>> {
    return this.registryWrites;
  }

  /** With a shared store, queues a successful registry change for the other instances. */
  private shareIfOk(outcome: RegistryOutcome, change: RegistryChange): Outcome<RegistryOutcome> {
    const shared = this.shared;
    if (shared !== undefined && outcome.ok) {
      this.registryWrites = this.registryWrites.then(() =>
        shared.publishRegistryChange(change).then(
          () => OK_VOID,
          (cause: unknown) => this.appendFailed("", cause),
        ),
      );
    }
    return ok(outcome);
  }

  /**
   * Applies a registry change from the shared log. Every instance applies
   * every change in the log's order, its own included, so concurrent changes
   * to one name end the same everywhere (the later one wins).
   */
  private applyRegistryChange(change: RegistryChange): void {
    switch (change.kind) {
      case "registerPolicy":
        this.policies.unregister(change.descriptor.policyId);
        this.policies.register(change.descriptor, change.registeredAtMs);
        this.policyHub.publish(this.policySnapshot());
        return;
      case "unregisterPolicy":
        this.policies.unregister(change.policyId);
        this.policyHub.publish(this.policySnapshot());
        return;
      case "registerMode":
        this.modes.unregister(change.descriptor.mode);
        this.modes.register(change.descriptor);
        break;
      case "unregisterMode":
        this.modes.unregister(change.mode);
        break;
      case "promoteMode":
        this.modes.promote(change.mode, change.promotedName);
        break;
    }
    this.modeRegistryHub.publish(this.modesChanged());
  }

  getPolicy(policyId: string, caller: Caller): Outcome<PolicyDescriptor> {
    if (!isAuthenticated(caller)) {
      return err(macpError(ErrorCode.UNAUTHENTICATED, caller.unauthenticated));
    }
    const policy = this.policies.get(policyId);
    if (policy === undefined) {
      return err(macpError(ErrorCode.NOT_FOUND, `policy "${policyId}" is not registered`));
    }
    return ok(policyDescriptorOf(policy));
  }

  listPolicies(mode: string, caller: Caller): Outcome<ListPoliciesResponse> {
    if (!isAuthenticated(caller)) {
      return err(macpError(ErrorCode.UNAUTHENTICATED, caller.unauthenticated));
    }
    return ok(
      create(ListPoliciesResponseSchema, {
        descriptors: this.policies.list(mode).map(policyDescriptorOf),
      }),
    );
  }

  // ---------------------------------------------------------------- Inspection

  inspectSession(sessionId: string): SessionSnapshot | undefined {
    const session = this.sessions.get(sessionId);
    if (session === undefined) return undefined;
    return {
      metadata: session.toMetadata(),
      modeState: session.handler.encodeState(session.modeState),
      resolution: session.resolution,
      acceptedMessageIds: [...session.seen].sort(compareStrings),
      acceptedCount: session.incomingCount,
      suspendedMs: session.suspendedTimeAt(this.clock.now()),
    };
  }

  // ---------------------------------------------------------------- Time-driven work

  nextDeadline(): number | undefined {
    let next = Number.POSITIVE_INFINITY;
    for (const session of this.sessions.values()) {
      const due = this.sessionDueAt(session);
      if (due < next) next = due;
    }
    return Number.isFinite(next) ? next : undefined;
  }

  private sessionDueAt(session: Session): number {
    switch (session.state) {
      case SessionState.OPEN: {
        // Expiry is strict (now > deadline), so the first instant it applies is deadline + 1.
        const modeDue = session.handler.nextDueAt?.(session.view, session.modeState);
        const expiry = session.expiresAtMs + 1;
        return modeDue !== undefined && modeDue < expiry ? modeDue : expiry;
      }
      case SessionState.SUSPENDED:
        return (session.suspendedAtMs ?? 0) + (session.maxSuspendMs - session.suspendedTotalMs) + 1;
      default:
        return (session.endedAtMs ?? 0) + this.limits.sessionRetentionMs;
    }
  }

  async processDueWork(): Promise<void> {
    const now = this.clock.now();
    const due: Session[] = [];
    for (const session of this.sessions.values()) {
      if (this.sessionDueAt(session) <= now) due.push(session);
    }
    for (const session of due) {
      await withLock(session, () => this.processDueSession(session, now));
    }
  }

  private async processDueSession(session: Session, now: number): Promise<void> {
    if (session.isTerminal) {
      if ((session.endedAtMs ?? 0) + this.limits.sessionRetentionMs <= now) this.evict(session);
      return;
    }
    const expired = await (this.shared !== undefined
      ? this.decideShared(session, () => this.refresh(session))
      : this.expireIfDue(session));
    if (expired.isErr() || session.state !== SessionState.OPEN) return;
    const messages = session.handler.dueMessages?.(session.view, session.modeState, now) ?? [];
    for (const message of messages) {
      const envelope: Envelope = {
        $typeName: "macp.v1.Envelope",
        macpVersion: PROTOCOL_VERSION,
        mode: session.view.mode,
        messageType: message.messageType,
        messageId: message.messageId,
        sessionId: session.view.sessionId,
        sender: message.sender,
        timestampUnixMs: BigInt(now),
        payload: message.payload,
      };
      const outcome = await (this.shared !== undefined
        ? this.decideShared(session, () => this.processInSession(session, envelope, true))
        : this.processInSession(session, envelope, true));
      if (outcome.isErr()) {
        this.logger.warn("a due mode message was refused", {
          sessionId: session.view.sessionId,
          messageId: message.messageId,
          code: outcome.error.code,
          message: outcome.error.message,
        });
      }
    }
  }

  private evict(session: Session): void {
    const sessionId = session.view.sessionId;
    this.sessions.delete(sessionId);
    this.tombstones.add(sessionId);
    this.trackOpen(session);
    this.releaseHub(sessionId);
  }

  // ---------------------------------------------------------------- Shared store (several instances)

  /** A session message when instances share the store. */
  private async sharedSessionMessage(
    known: Session | undefined,
    envelope: Envelope,
  ): Promise<Outcome<Ack>> {
    let session = known;
    if (session === undefined) {
      const loaded = await this.loadShared(envelope.sessionId, true);
      if (loaded.isErr()) return err(loaded.error);
      session = loaded.value;
      if (session === undefined) {
        return err(
          macpError(ErrorCode.SESSION_NOT_FOUND, `session "${envelope.sessionId}" not found`),
        );
      }
    }
    const target = session;
    return withLock(target, () =>
      this.decideShared(target, () => this.processInSession(target, envelope, false)),
    );
  }

  /**
   * Runs one decision on a replica, inside its lock. A conflict means another
   * instance appended first, and a refusal may come from a stale replica: both
   * catch up from the log and decide again, so what is answered always stands
   * on the log's latest state. An acceptance needs no check: its append at the
   * expected position proves the state was current.
   */
  private async decideShared<T>(
    session: Session,
    decide: () => MaybeAsync<Outcome<T>>,
  ): Promise<Outcome<T>> {
    for (let attempt = 1; ; attempt++) {
      const decided = await decide();
      if (decided.isOk()) return decided;
      if (attempt >= MAX_SHARED_ATTEMPTS) {
        return err(
          macpError(ErrorCode.INTERNAL_ERROR, "the session is changing too fast to decide; retry"),
        );
      }
      const caughtUp = await this.catchUp(session);
      if (caughtUp.isErr()) return err(caughtUp.error);
      if (decided.error !== LOG_CONFLICT && caughtUp.value === 0) return decided;
    }
  }

  /** Applies the records other instances appended since this replica's position; call inside the lock. */
  private async catchUp(session: Session): Promise<Outcome<number>> {
    if (this.shared === undefined) return ok(0);
    const sessionId = session.view.sessionId;
    let records: readonly LogRecord[];
    try {
      records = await this.shared.readFrom(sessionId, session.logLength);
    } catch (cause) {
      return this.appendFailed(sessionId, cause);
    }
    const ctx: ReplayContext = { session: session.view, acceptedAtMs: 0, synthetic: false };
    for (const record of records) {
      const applied = this.applyRecord(session, record, ctx, true);
      if (applied.isErr()) {
        this.logger.error("a record from the shared log does not apply", {
          sessionId,
          reason: applied.error,
        });
        return err(macpError(ErrorCode.INTERNAL_ERROR, "the session's log cannot be applied"));
      }
    }
    return ok(records.length);
  }

  /**
   * The replica of a session, loaded from the shared log if this instance has
   * none yet. Loading publishes what it applies (CREATED, envelopes, later
   * transitions), so watchers here see sessions started elsewhere.
   */
  private async loadShared(
    sessionId: string,
    waitForStarts: boolean,
  ): Promise<Outcome<Session | undefined>> {
    const pending = waitForStarts ? this.pendingStarts.get(sessionId) : undefined;
    if (pending !== undefined) await pending;
    const existing = this.sessions.get(sessionId);
    if (existing !== undefined) return ok(existing);
    if (this.tombstones.has(sessionId)) return ok(undefined);
    let loading = this.loading.get(sessionId);
    if (loading === undefined) {
      loading = this.readShared(sessionId).finally(() => this.loading.delete(sessionId));
      this.loading.set(sessionId, loading);
    }
    return loading;
  }

  private async readShared(sessionId: string): Promise<Outcome<Session | undefined>> {
    let records: readonly LogRecord[];
    try {
      records = (await this.store.read(sessionId)) ?? [];
    } catch (cause) {
      return this.appendFailed(sessionId, cause);
    }
    const existing = this.sessions.get(sessionId);
    if (existing !== undefined) return ok(existing);
    const replayed = this.replay(sessionId, records.slice(0, 1));
    if (replayed.isErr()) {
      this.tombstones.add(sessionId);
      this.logger.error("session quarantined: its log could not be replayed", {
        sessionId,
        reason: replayed.error,
      });
      return ok(undefined);
    }
    const session = replayed.value;
    const first = records[0];
    if (session === undefined || first?.kind !== "incoming") return ok(undefined);
    this.insertSession(session);
    this.publishEnvelope(session, first.envelope);
    this.emitLifecycle(EventType.CREATED, session, this.clock.now());
    const ctx: ReplayContext = { session: session.view, acceptedAtMs: 0, synthetic: false };
    for (const record of records.slice(1)) {
      const applied = this.applyRecord(session, record, ctx, true);
      if (applied.isErr()) {
        this.logger.error("a record from the shared log does not apply", {
          sessionId,
          reason: applied.error,
        });
        break;
      }
    }
    return ok(session);
  }

  private followCluster(shared: SharedSessionStore): Promise<void> {
    const feed = shared.follow({
      appended: (sessionId, position) => void this.followAppend(sessionId, position),
      ambient: (envelope) => this.signalHub.publish(envelope),
      registryChanged: (change) => this.applyRegistryChange(change),
      resync: () => void this.resync(shared),
    });
    this.stopFollowing = () => feed.stop();
    return feed.ready;
  }

  private async followAppend(sessionId: string, position: number): Promise<void> {
    if (this.closed) return;
    const pending = this.pendingStarts.get(sessionId);
    if (pending !== undefined) await pending;
    const session = this.sessions.get(sessionId);
    if (session === undefined) {
      await this.loadShared(sessionId, false);
      return;
    }
    if (session.logLength > position) return;
    await withLock(session, () => this.catchUp(session));
  }

  /** After notifications may have been lost: bring every replica up to its log. */
  private async resync(shared: SharedSessionStore): Promise<void> {
    let lengths: ReadonlyMap<string, number>;
    try {
      lengths = await shared.logLengths();
    } catch (cause) {
      this.logger.warn("resync with the shared store failed", {
        error: cause instanceof Error ? cause.message : String(cause),
      });
      return;
    }
    for (const [sessionId, length] of lengths) {
      if (this.closed) return;
      const session = this.sessions.get(sessionId);
      if (session === undefined || session.logLength < length) {
        await this.followAppend(sessionId, length - 1);
      }
    }
  }

  // ---------------------------------------------------------------- Recovery

  async recover(): Promise<RecoveryReport> {
    let sessions = 0;
    let records = 0;
    const quarantined: { sessionId: string; reason: string }[] = [];
    const now = this.clock.now();
    // Follow first, so nothing appended during the load is missed; the resync below closes the seam.
    if (this.shared !== undefined && this.stopFollowing === undefined) {
      await this.followCluster(this.shared);
    }
    for await (const stored of this.store.loadAll()) {
      if (this.sessions.has(stored.sessionId)) continue;
      this.tombstones.add(stored.sessionId);
      const replayed =
        "error" in stored ? err(stored.error) : this.replay(stored.sessionId, stored.records);
      if (replayed.isErr()) {
        if (this.strictRecovery) {
          throw new Error(`session ${stored.sessionId} could not be recovered: ${replayed.error}`);
        }
        this.logger.error("session quarantined: its log could not be replayed", {
          sessionId: stored.sessionId,
          reason: replayed.error,
        });
        quarantined.push({ sessionId: stored.sessionId, reason: replayed.error });
        continue;
      }
      sessions++;
      records += "records" in stored ? stored.records.length : 0;
      const session = replayed.value;
      if (session === undefined) continue;
      const evictable =
        session.isTerminal && (session.endedAtMs ?? 0) + this.limits.sessionRetentionMs <= now;
      if (!evictable) {
        this.tombstones.delete(stored.sessionId);
        this.insertSession(session);
      }
    }
    if (this.shared !== undefined) await this.resync(this.shared);
    this.logger.info("recovery complete", { sessions, records, quarantined: quarantined.length });
    return { sessions, records, quarantined };
  }

  /**
   * Rebuilds one session from its log (DET-13), using only what the log
   * recorded: the binding on the SessionStart, acceptance times, runtime records.
   * A log with no records yields no session (its id stays reserved).
   */
  private replay(
    sessionId: string,
    records: readonly LogRecord[],
  ): Result<Session | undefined, string> {
    const first = records[0];
    if (first === undefined) return ok(undefined);
    if (
      first.kind !== "incoming" ||
      first.envelope.messageType !== "SessionStart" ||
      !first.binding
    ) {
      return err("the log does not begin with a SessionStart record");
    }
    const binding = first.binding;
    let start: SessionStartPayload;
    try {
      start = fromBinary(SessionStartPayloadSchema, first.envelope.payload);
    } catch {
      return err("the SessionStart payload cannot be decoded");
    }
    const registered = this.modes.get(first.envelope.mode);
    const entry: ModeEntry = registered ?? {
      descriptor: binding.modeDescriptor,
      handler: createPassthroughMode(binding.modeDescriptor),
      strict: binding.strict,
      standardsTrack: false,
      builtIn: false,
    };
    const view: SessionView = {
      sessionId,
      mode: first.envelope.mode,
      initiator: first.envelope.sender,
      participants: start.participants,
      modeVersion: binding.modeVersion,
      configurationVersion: start.configurationVersion,
      policyVersion: binding.policy.policyId,
      policy: binding.policy,
    };
    const initial = entry.handler.onSessionStart(view, start);
    if (initial.isErr()) return err(`SessionStart no longer validates: ${initial.error.message}`);
    const session = this.buildSession(
      view,
      entry,
      start,
      binding,
      first.receivedAtMs,
      initial.value,
    );
    session.seen.add(first.envelope.messageId);
    session.incomingCount = 1;
    session.logLength = 1;
    // One context for the whole log: handlers read it during the call and never keep it.
    const ctx: ReplayContext = { session: view, acceptedAtMs: 0, synthetic: false };
    for (let index = 1; index < records.length; index++) {
      const applied = this.applyRecord(session, records[index] as LogRecord, ctx, false);
      if (applied.isErr()) return err(`record ${index + 1} ${applied.error}`);
    }
    return ok(session);
  }

  /**
   * Applies one logged record after the SessionStart: replay (`live` false)
   * and catching up from a shared log (`live` true: streams and watchers see it).
   */
  private applyRecord(
    session: Session,
    record: LogRecord,
    ctx: ReplayContext,
    live: boolean,
  ): Result<void, string> {
    session.logLength++;
    if (record.kind === "internal") {
      this.replayInternal(session, record.type, record.receivedAtMs, live);
      return APPLIED;
    }
    const envelope = record.envelope;
    if (session.state !== SessionState.OPEN) {
      session.seen.add(envelope.messageId);
      session.incomingCount++;
      return APPLIED;
    }
    ctx.acceptedAtMs = record.receivedAtMs;
    ctx.synthetic = envelope.messageId.startsWith(IMPLICIT_ACCEPT_PREFIX);
    const handler = session.handler;
    const authorized = handler.authorizeSender(ctx, session.modeState, envelope);
    const step = authorized.isErr()
      ? authorized
      : handler.onMessage(ctx, session.modeState, envelope);
    if (step.isErr()) {
      return err(
        `(${envelope.messageType} ${envelope.messageId}) no longer applies: ${step.error.code} ${step.error.message}`,
      );
    }
    this.applyAccepted(session, envelope, step.value, record.receivedAtMs, live);
    return APPLIED;
  }

  private replayInternal(
    session: Session,
    type: InternalRecordType,
    atMs: number,
    live: boolean,
  ): void {
    switch (type) {
      case "TtlExpired":
        this.applyExpire(session, atMs, live);
        return;
      case "SessionCancel":
        this.applyCancel(session, atMs, live);
        return;
      case "SessionSuspend":
        this.applySuspend(session, atMs, live);
        return;
      case "SessionResume":
        this.applyResume(session, atMs, live);
        return;
    }
  }

  // ---------------------------------------------------------------- Shutdown

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopFollowing?.();
    for (const stream of [...this.openStreams]) stream.end();
    for (const hub of this.sessionHubs.values()) hub.endAll();
    this.lifecycleHub.endAll();
    this.signalHub.endAll();
    this.modeRegistryHub.endAll();
    this.policyHub.endAll();
    this.rootsHub.endAll();
    await Promise.allSettled([...this.pendingStarts.values()]);
    await Promise.allSettled([...this.sessions.values()].map((s) => s.lockTail));
    await this.store.close();
  }

  // ---------------------------------------------------------------- Acks

  private ack(
    envelope: Envelope,
    state: SessionState,
    duplicate: boolean,
    now = this.clock.now(),
  ): Ack {
    return {
      $typeName: "macp.v1.Ack",
      ok: true,
      duplicate,
      messageId: envelope.messageId,
      sessionId: envelope.sessionId,
      acceptedAtUnixMs: bigintMs(now),
      sessionState: state,
    };
  }
}

function targetFor(session: Session, open: boolean, expiresAtMs: number): SharedTarget {
  return {
    position: session.logLength,
    summary: { initiator: session.view.initiator, open, expiresAtMs },
  };
}

/** The session's summary once a runtime record applies (mirrors applyResume for resumes). */
function internalTarget(session: Session, type: InternalRecordType, now: number): SharedTarget {
  if (type !== "SessionResume") return targetFor(session, false, session.expiresAtMs);
  const duration = Math.max(0, now - (session.suspendedAtMs ?? now));
  const open = session.suspendedTotalMs + duration <= session.maxSuspendMs;
  return targetFor(session, open, open ? session.expiresAtMs + duration : session.expiresAtMs);
}

const NO_EXTENSIONS: readonly string[] = Object.freeze([]);

function extensionKeysOf(start: SessionStartPayload): readonly string[] {
  const keys = Object.keys(start.extensions);
  return keys.length === 0 ? NO_EXTENSIONS : keys.sort(compareStrings);
}

function registryOutcome<T>(result: Result<T, string>): RegistryOutcome {
  return result.isOk() ? { ok: true, error: "" } : { ok: false, error: result.error };
}

function encodePageToken(ordinal: number): string {
  return `p${ordinal.toString(36)}`;
}

function decodePageToken(token: string): number | undefined {
  if (!/^p[0-9a-z]{1,11}$/.test(token)) return undefined;
  const value = Number.parseInt(token.slice(1), 36);
  return Number.isSafeInteger(value) ? value : undefined;
}
