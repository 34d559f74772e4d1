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
  WatchPoliciesResponse,
} from "@macp/proto";
import { err } from "neverthrow";
import type { Caller, Identity } from "./identity.js";
import { Admission } from "./kernel/admission.js";
import { followCluster, resync } from "./kernel/cluster.js";
import { dispatch } from "./kernel/dispatch.js";
import { nextDeadline, processDueWork } from "./kernel/due-work.js";
import { Kernel } from "./kernel/kernel.js";
import type { MaybeAsync, Outcome } from "./kernel/outcome.js";
import { recover } from "./kernel/recovery.js";
import { Registries } from "./kernel/registries.js";
import { lookupSession } from "./kernel/replicas.js";
import { cancelSession, resumeSession, suspendSession } from "./kernel/session-control.js";
import { SessionLog } from "./kernel/session-log.js";
import { getSession, inspectSession, listSessions } from "./kernel/session-queries.js";
import type { KernelForStreams } from "./kernel/session-stream.js";
import { SessionTable } from "./kernel/session-table.js";
import { StreamHubs } from "./kernel/stream-hubs.js";
import { openSessionStream, watchSessions, watchSignals } from "./kernel/stream-rpcs.js";
import type { ModeEntry } from "./mode-handler.js";
import { builtInModes } from "./modes/built-in-modes.js";
import { ModeRegistry } from "./modes/mode-registry.js";
import { PolicyRegistry } from "./policy/policy-registry.js";
import type {
  ListSessionsOptions,
  MacpRuntime,
  RecoveryReport,
  RegistryOutcome,
  SessionSnapshot,
  SessionStream,
} from "./runtime-api.js";
import type { ControlOperation, RuntimeObserver } from "./runtime-observer.js";
import {
  DEFAULT_LIMITS,
  type ModePlugin,
  type RuntimeInfoOptions,
  type RuntimeLogger,
  type RuntimeOptions,
} from "./runtime-options.js";
import { createMemoryStore } from "./store/memory-store.js";

const DEFAULT_RUNTIME_INFO: RuntimeInfoOptions = {
  name: "macp-ts",
  title: "MACP TypeScript Runtime",
  version: "0.1.0",
  description: "A TypeScript runtime for the Multi-Agent Coordination Protocol",
  websiteUrl: "",
};

const SILENT_LOGGER: RuntimeLogger = { info() {}, warn() {}, error() {} };

/** Creates a runtime. The options object documents every injected effect. */
export function createRuntime(options: RuntimeOptions): MacpRuntime {
  return new Runtime(options);
}

/**
 * The facade: one method per RPC, each handing over to the kernel step that
 * owns it (see docs/architecture.md, "One envelope through the kernel").
 */
class Runtime implements MacpRuntime {
  private readonly kernel: Kernel;
  private readonly admission: Admission;
  private readonly registries: Registries;
  private readonly streams: KernelForStreams;
  private readonly observer: RuntimeObserver | undefined;
  private readonly strictRecovery: boolean;
  /** Stops the shared store's change feed, once following. */
  private stopFollowing: (() => void) | undefined;

  constructor(options: RuntimeOptions) {
    const clock = options.clock;
    const limits = { ...DEFAULT_LIMITS, ...options.limits };
    const logger = options.logger ?? SILENT_LOGGER;
    const modes = new ModeRegistry(modeEntries(options.modes ?? []));
    const policies = new PolicyRegistry((mode) => modes.policyRulesFor(mode));
    for (const policy of options.policies ?? []) {
      const outcome = policies.registerDefinition(policy, policy.registeredAtUnixMs || clock.now());
      if (outcome.isErr()) throw new Error(`policy ${policy.policyId}: ${outcome.error}`);
    }
    this.observer = options.observer;
    this.strictRecovery = options.strictRecovery ?? false;
    const kernel = new Kernel(
      clock,
      limits,
      logger,
      modes,
      policies,
      new SessionTable(),
      new SessionLog(options.store ?? createMemoryStore(), logger),
      new StreamHubs(limits, options.observer),
      options.observer,
    );
    this.kernel = kernel;
    this.admission = new Admission(clock, limits);
    this.registries = new Registries(
      kernel,
      { ...DEFAULT_RUNTIME_INFO, ...options.runtimeInfo },
      options.policyRegistryReadOnly ?? false,
    );
    const admission = this.admission;
    this.streams = {
      limits,
      observer: options.observer,
      checkSecurity: (envelope, identity) => admission.checkSecurity(envelope, identity),
      checkAuthorization: (envelope, identity) => admission.checkAuthorization(envelope, identity),
      checkRateLimit: (envelope) => admission.checkRateLimit(envelope),
      dispatch: (envelope, identity) => dispatch(kernel, envelope, identity),
      lookupSession: (sessionId) => lookupSession(kernel, sessionId),
      sessionHub: (sessionId) => kernel.hubs.sessionHub(sessionId),
      releaseHub: (sessionId) => kernel.hubs.releaseSessionHub(sessionId),
      readIncoming: (sessionId, after, upTo) => kernel.log.readIncoming(sessionId, after, upTo),
    };
  }

  // ---------------------------------------------------------------- Send

  send(envelope: Envelope | undefined, caller: Caller): Promise<Outcome<Ack>> {
    try {
      const answer = this.accept(envelope, caller);
      const settled = this.observer?.sendSettled;
      if (!(answer instanceof Promise)) {
        // Answered at once (the usual case): tell the observer now rather than
        // after a promise hop, which costs a microtask per call.
        settled?.call(this.observer, envelope, answer, caller);
        return Promise.resolve(answer);
      }
      if (settled === undefined) return answer;
      return answer.then((outcome) => {
        settled.call(this.observer, envelope, outcome, caller);
        return outcome;
      });
    } catch (cause) {
      return Promise.reject(cause);
    }
  }

  /** Validate, then the kernel: synchronous whenever nothing has to wait. */
  private accept(envelope: Envelope | undefined, caller: Caller): MaybeAsync<Outcome<Ack>> {
    const admitted = this.admission.admit(envelope, caller);
    if (admitted.isErr()) return err(admitted.error);
    // admit() succeeds only for an authenticated caller.
    return dispatch(this.kernel, admitted.value, caller as Identity);
  }

  openSessionStream(caller: Caller, signal?: AbortSignal): Outcome<SessionStream> {
    return openSessionStream(this.kernel, this.streams, caller, signal);
  }

  // ---------------------------------------------------------------- Sessions

  getSession(sessionId: string, caller: Caller): Promise<Outcome<SessionMetadata>> {
    return getSession(this.kernel, sessionId, caller);
  }

  listSessions(options: ListSessionsOptions, caller: Caller): Outcome<ListSessionsResponse> {
    return listSessions(this.kernel, options, caller);
  }

  cancelSession(sessionId: string, reason: string, caller: Caller): Promise<Outcome<Ack>> {
    return this.observed("cancel", cancelSession(this.kernel, sessionId, reason, caller));
  }

  suspendSession(sessionId: string, reason: string, caller: Caller): Promise<Outcome<Ack>> {
    return this.observed("suspend", suspendSession(this.kernel, sessionId, reason, caller));
  }

  resumeSession(sessionId: string, reason: string, caller: Caller): Promise<Outcome<Ack>> {
    return this.observed("resume", resumeSession(this.kernel, sessionId, reason, caller));
  }

  private observed(
    operation: ControlOperation,
    result: Promise<Outcome<Ack>>,
  ): Promise<Outcome<Ack>> {
    const settled = this.observer?.controlSettled;
    if (settled === undefined) return result;
    return result.then((outcome) => {
      settled.call(this.observer, operation, outcome);
      return outcome;
    });
  }

  inspectSession(sessionId: string): SessionSnapshot | undefined {
    return inspectSession(this.kernel, sessionId);
  }

  readHistory(sessionId: string): Promise<Envelope[]> {
    return this.kernel.log.readIncoming(sessionId, 0, Number.MAX_SAFE_INTEGER);
  }

  // ---------------------------------------------------------------- Discovery and registries

  initialize(request: InitializeRequest): Outcome<InitializeResponse> {
    return this.registries.initialize(request);
  }

  getManifest(agentId: string): Outcome<AgentManifest> {
    return this.registries.getManifest(agentId);
  }

  listModes(): ModeDescriptor[] {
    return this.kernel.modes.listStandards();
  }

  listExtModes(): ModeDescriptor[] {
    return this.kernel.modes.listExtensions();
  }

  listRoots(): Root[] {
    return [];
  }

  registerExtMode(
    descriptor: ModeDescriptor | undefined,
    caller: Caller,
  ): Outcome<RegistryOutcome> {
    return this.registries.registerExtMode(descriptor, caller);
  }

  unregisterExtMode(mode: string, caller: Caller): Outcome<RegistryOutcome> {
    return this.registries.unregisterExtMode(mode, caller);
  }

  promoteMode(mode: string, promotedName: string, caller: Caller): Outcome<RegistryOutcome> {
    return this.registries.promoteMode(mode, promotedName, caller);
  }

  registerPolicy(
    descriptor: PolicyDescriptor | undefined,
    caller: Caller,
  ): Outcome<RegistryOutcome> {
    return this.registries.registerPolicy(descriptor, caller);
  }

  unregisterPolicy(policyId: string, caller: Caller): Outcome<RegistryOutcome> {
    return this.registries.unregisterPolicy(policyId, caller);
  }

  registryCommitted(): Promise<Outcome<void>> {
    return this.registries.registryCommitted();
  }

  getPolicy(policyId: string, caller: Caller): Outcome<PolicyDescriptor> {
    return this.registries.getPolicy(policyId, caller);
  }

  listPolicies(mode: string, caller: Caller): Outcome<ListPoliciesResponse> {
    return this.registries.listPolicies(mode, caller);
  }

  // ---------------------------------------------------------------- Watches

  watchSessions(
    caller: Caller,
    signal?: AbortSignal,
  ): Outcome<AsyncIterable<SessionLifecycleEvent>> {
    return watchSessions(this.kernel, caller, signal);
  }

  watchSignals(caller: Caller, signal?: AbortSignal): Outcome<AsyncIterable<Envelope>> {
    return watchSignals(this.kernel, caller, signal);
  }

  watchModeRegistry(signal?: AbortSignal): AsyncIterable<RegistryChanged> {
    return this.registries.watchModeRegistry(signal);
  }

  watchRoots(signal?: AbortSignal): AsyncIterable<RootsChanged> {
    return this.registries.watchRoots(signal);
  }

  watchPolicies(signal?: AbortSignal): AsyncIterable<WatchPoliciesResponse> {
    return this.registries.watchPolicies(signal);
  }

  // ---------------------------------------------------------------- Time, recovery, shutdown

  nextDeadline(): number | undefined {
    return nextDeadline(this.kernel);
  }

  processDueWork(): Promise<void> {
    return processDueWork(this.kernel);
  }

  async recover(): Promise<RecoveryReport> {
    const shared = this.kernel.log.shared;
    if (shared === undefined) return recover(this.kernel, this.strictRecovery);
    // Follow first, so nothing appended during the load is missed; the resync closes the seam.
    if (this.stopFollowing === undefined) {
      const registries = this.registries;
      this.stopFollowing = await followCluster(this.kernel, shared, (change) =>
        registries.applyRegistryChange(change),
      );
    }
    const report = await recover(this.kernel, this.strictRecovery);
    await resync(this.kernel, shared);
    return report;
  }

  async close(): Promise<void> {
    const kernel = this.kernel;
    if (kernel.closed) return;
    kernel.closed = true;
    this.stopFollowing?.();
    kernel.hubs.endAll();
    await Promise.allSettled([...kernel.table.pendingStarts.values()]);
    await Promise.allSettled([...kernel.table.sessions.values()].map((s) => s.lockTail));
    await kernel.log.store.close();
  }
}

/** The built-in modes, then the host's; a host mode may not take a built-in name. */
function modeEntries(plugins: readonly ModePlugin[]): ModeEntry[] {
  const entries = builtInModes();
  const names = new Set(entries.map((entry) => entry.descriptor.mode));
  for (const plugin of plugins) {
    const name = plugin.descriptor.mode;
    if (name.trim() === "" || names.has(name)) {
      throw new Error(
        `mode "${name}": ${name.trim() === "" ? "blank name" : "already registered"}`,
      );
    }
    names.add(name);
    entries.push({
      descriptor: plugin.descriptor,
      handler: plugin.handler,
      strict: plugin.strict ?? false,
      standardsTrack: plugin.standardsTrack ?? false,
      builtIn: true,
    });
  }
  return entries;
}
