import { create } from "@bufbuild/protobuf";
import {
  type AgentManifest,
  AgentManifestSchema,
  CapabilitiesSchema,
  type InitializeRequest,
  type InitializeResponse,
  InitializeResponseSchema,
  type ListPoliciesResponse,
  ListPoliciesResponseSchema,
  type ModeDescriptor,
  type PolicyDescriptor,
  type RegistryChanged,
  RegistryChangedSchema,
  type RootsChanged,
  RootsChangedSchema,
  type WatchPoliciesResponse,
  WatchPoliciesResponseSchema,
} from "@macp/proto";
import { err, ok, type Result } from "neverthrow";
import { ErrorCode, macpError } from "../errors.js";
import { type Caller, type Identity, isAuthenticated } from "../identity.js";
import { policyDescriptorOf } from "../policy/policy-descriptor.js";
import type { RegistryOutcome } from "../runtime-api.js";
import type { RuntimeInfoOptions } from "../runtime-options.js";
import type { RegistryChange, SharedSessionStore } from "../store/shared-session-store.js";
import { PROTOCOL_VERSION } from "./envelope-checks.js";
import type { Kernel } from "./kernel.js";
import { OK_VOID, type Outcome } from "./outcome.js";

/** Initialize, GetManifest and the mode and policy registry RPCs, with their watches. */
export class Registries {
  /** Registry changes made here, written to the shared store one after another. */
  private registryWrites: Promise<Outcome<void>> = Promise.resolve(OK_VOID);
  /** What `registryCommitted` answers: the write of the latest mutation, if it queued one. */
  private latestWrite: Promise<Outcome<void>> = Promise.resolve(OK_VOID);

  constructor(
    private readonly kernel: Kernel,
    private readonly info: RuntimeInfoOptions,
    private readonly policiesReadOnly: boolean,
  ) {}

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
        supportedModes: this.kernel.modes.allNames(),
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
        supportedModes: this.kernel.modes.allNames(),
        inputContentTypes: ["application/macp-envelope+proto"],
        outputContentTypes: ["application/macp-envelope+proto"],
      }),
    );
  }

  // ---------------------------------------------------------------- Mode registry

  registerExtMode(
    descriptor: ModeDescriptor | undefined,
    caller: Caller,
  ): Outcome<RegistryOutcome> {
    const allowed = registryAdmin(caller);
    if (allowed.isErr()) return err(allowed.error);
    if (descriptor === undefined) {
      return err(macpError(ErrorCode.INVALID_REQUEST, "mode_descriptor is required"));
    }
    return this.change((apply) => this.kernel.modes.register(descriptor, apply), {
      kind: "registerMode",
      descriptor,
    });
  }

  unregisterExtMode(mode: string, caller: Caller): Outcome<RegistryOutcome> {
    const allowed = registryAdmin(caller);
    if (allowed.isErr()) return err(allowed.error);
    return this.change((apply) => this.kernel.modes.unregister(mode, apply), {
      kind: "unregisterMode",
      mode,
    });
  }

  promoteMode(mode: string, promotedName: string, caller: Caller): Outcome<RegistryOutcome> {
    const allowed = registryAdmin(caller);
    if (allowed.isErr()) return err(allowed.error);
    return this.change((apply) => this.kernel.modes.promote(mode, promotedName, apply), {
      kind: "promoteMode",
      mode,
      promotedName,
    });
  }

  // ---------------------------------------------------------------- Policy registry

  registerPolicy(
    descriptor: PolicyDescriptor | undefined,
    caller: Caller,
  ): Outcome<RegistryOutcome> {
    const allowed = this.policyAdmin(caller);
    if (allowed.isErr()) return err(allowed.error);
    if (descriptor === undefined) {
      return err(macpError(ErrorCode.INVALID_REQUEST, "policy_descriptor is required"));
    }
    const registeredAtMs = this.kernel.clock.now();
    return this.change(
      (apply) => registryOutcome(this.kernel.policies.register(descriptor, registeredAtMs, apply)),
      { kind: "registerPolicy", descriptor, registeredAtMs },
    );
  }

  unregisterPolicy(policyId: string, caller: Caller): Outcome<RegistryOutcome> {
    const allowed = this.policyAdmin(caller);
    if (allowed.isErr()) return err(allowed.error);
    return this.change(
      (apply) => registryOutcome(this.kernel.policies.unregister(policyId, apply)),
      { kind: "unregisterPolicy", policyId },
    );
  }

  private policyAdmin(caller: Caller): Outcome<Identity> {
    if (this.policiesReadOnly) {
      return err(
        macpError(
          ErrorCode.READ_ONLY,
          "the policy registry is read-only (loaded from a directory)",
        ),
      );
    }
    return registryAdmin(caller);
  }

  /** Resolves once the latest registry change made here is durable and applied here (at once without a shared store). */
  registryCommitted(): Promise<Outcome<void>> {
    return this.latestWrite;
  }

  /**
   * Makes a registry change. Alone, it is applied at once. With a shared store
   * it is only checked here, then written to the shared log; this instance
   * applies it when the log delivers it, in the log's order like every other
   * instance, and `registryCommitted` answers once it has (or with the write's
   * failure, the registry unchanged).
   */
  private change(
    attempt: (apply: boolean) => RegistryOutcome,
    change: RegistryChange,
  ): Outcome<RegistryOutcome> {
    const shared = this.kernel.log.shared;
    if (shared === undefined) {
      const outcome = attempt(true);
      if (outcome.ok) this.publishChange(change);
      return ok(outcome);
    }
    const outcome = attempt(false);
    if (outcome.ok) {
      this.registryWrites = this.registryWrites.then(() => this.writeShared(shared, change));
      this.latestWrite = this.registryWrites;
    } else {
      // A refused change wrote nothing: an earlier caller's failed write is not its answer.
      this.latestWrite = Promise.resolve(OK_VOID);
    }
    return ok(outcome);
  }

  private async writeShared(
    shared: SharedSessionStore,
    change: RegistryChange,
  ): Promise<Outcome<void>> {
    try {
      await shared.publishRegistryChange(change);
    } catch (cause) {
      return this.kernel.log.appendFailed("", cause);
    }
    try {
      await shared.syncRegistry();
    } catch (cause) {
      // The change is durable, so it stands; the feed applies it here once the store answers again.
      this.kernel.logger.warn("registry catch-up after a change failed", {
        error: cause instanceof Error ? cause.message : String(cause),
      });
    }
    return OK_VOID;
  }

  /**
   * Applies a registry change from the shared log. Every instance applies
   * every change in the log's order, its own included, so concurrent changes
   * to one name end the same everywhere (the later one wins).
   */
  applyRegistryChange(change: RegistryChange): void {
    const { modes, policies } = this.kernel;
    switch (change.kind) {
      case "registerPolicy":
        policies.unregister(change.descriptor.policyId);
        policies.register(change.descriptor, change.registeredAtMs);
        break;
      case "unregisterPolicy":
        policies.unregister(change.policyId);
        break;
      case "registerMode":
        modes.unregister(change.descriptor.mode);
        modes.register(change.descriptor);
        break;
      case "unregisterMode":
        modes.unregister(change.mode);
        break;
      case "promoteMode":
        modes.promote(change.mode, change.promotedName);
        break;
    }
    this.publishChange(change);
  }

  /** Tells the registry's watchers about an applied change. */
  private publishChange(change: RegistryChange): void {
    const hubs = this.kernel.hubs;
    if (change.kind === "registerPolicy" || change.kind === "unregisterPolicy") {
      hubs.policies.publish(this.policySnapshot());
    } else {
      hubs.modeRegistry.publish(this.modesChanged());
    }
  }

  getPolicy(policyId: string, caller: Caller): Outcome<PolicyDescriptor> {
    if (!isAuthenticated(caller)) {
      return err(macpError(ErrorCode.UNAUTHENTICATED, caller.unauthenticated));
    }
    const policy = this.kernel.policies.get(policyId);
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
        descriptors: this.kernel.policies.list(mode).map(policyDescriptorOf),
      }),
    );
  }

  // ---------------------------------------------------------------- Watches

  watchModeRegistry(signal?: AbortSignal): AsyncIterable<RegistryChanged> {
    const hubs = this.kernel.hubs;
    return hubs.subscribe("WatchModeRegistry", hubs.modeRegistry, signal, [this.modesChanged()]);
  }

  watchRoots(signal?: AbortSignal): AsyncIterable<RootsChanged> {
    const hubs = this.kernel.hubs;
    return hubs.subscribe("WatchRoots", hubs.roots, signal, [
      create(RootsChangedSchema, { observedAtUnixMs: BigInt(this.kernel.clock.now()) }),
    ]);
  }

  watchPolicies(signal?: AbortSignal): AsyncIterable<WatchPoliciesResponse> {
    const hubs = this.kernel.hubs;
    return hubs.subscribe("WatchPolicies", hubs.policies, signal, [this.policySnapshot()]);
  }

  private modesChanged(): RegistryChanged {
    return create(RegistryChangedSchema, {
      registry: "modes",
      observedAtUnixMs: BigInt(this.kernel.clock.now()),
    });
  }

  private policySnapshot(): WatchPoliciesResponse {
    return create(WatchPoliciesResponseSchema, {
      descriptors: this.kernel.policies.list("").map(policyDescriptorOf),
      observedAtUnixMs: BigInt(this.kernel.clock.now()),
    });
  }
}

function registryAdmin(caller: Caller): Outcome<Identity> {
  if (!isAuthenticated(caller)) {
    return err(macpError(ErrorCode.UNAUTHENTICATED, caller.unauthenticated));
  }
  if (!caller.canManageModeRegistry) {
    return err(macpError(ErrorCode.FORBIDDEN, "this identity may not manage the registries"));
  }
  return ok(caller);
}

function registryOutcome<T>(result: Result<T, string>): RegistryOutcome {
  return result.isOk() ? { ok: true, error: "" } : { ok: false, error: result.error };
}
