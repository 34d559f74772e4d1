import { clone } from "@bufbuild/protobuf";
import { type ModeDescriptor, ModeDescriptorSchema } from "@macp/proto";
import type { ModeEntry } from "../mode-handler.js";
import type { PolicyRulesCheck } from "../policy/rules-validation.js";
import type { RegistryOutcome } from "../runtime-api.js";
import { compareByteOrder } from "../text/byte-order.js";
import { builtInModes, STANDARD_MODE_ORDER } from "./built-in-modes.js";
import { COMMITMENT } from "./commitment.js";
import { decisionPolicyRules } from "./decision/decision-rules.js";
import { createPassthroughMode } from "./passthrough/passthrough-mode.js";

/** Names under this prefix belong to the standard modes; extensions may not take them. */
const RESERVED_PREFIX = "macp.mode.";

function refused(error: string, mode?: string): RegistryOutcome {
  return mode === undefined ? { ok: false, error } : { ok: false, error, mode };
}

/**
 * The mode registry (modes.md §1, core.md MR-1..MR-9). Pure bookkeeping: who
 * may change it and the change notifications are the kernel's business.
 * Refusals come back as `{ok: false, error}` outcomes, as on the wire.
 */
export class ModeRegistry {
  readonly #entries = new Map<string, ModeEntry>();

  /** Starts with the built-in modes unless told otherwise. */
  constructor(entries: Iterable<ModeEntry> = builtInModes()) {
    for (const entry of entries) this.#entries.set(entry.descriptor.mode, entry);
  }

  get(mode: string): ModeEntry | undefined {
    return this.#entries.get(mode);
  }

  /**
   * The rules check for a policy targeting `mode` (the policy registry's
   * lookup): the mode's own, and Decision's for "*" policies (modes.md §9.5).
   */
  policyRulesFor(mode: string): PolicyRulesCheck | undefined {
    if (mode === "*") return decisionPolicyRules;
    return this.#entries.get(mode)?.handler.policyRules;
  }

  /**
   * RegisterExtMode: validates the descriptor and backs it with the passthrough
   * handler. With `apply` false it only answers whether the change would succeed.
   */
  register(descriptor: ModeDescriptor, apply = true): RegistryOutcome {
    const mode = descriptor.mode;
    if (mode.trim() === "") return refused("mode must not be blank");
    if (mode.startsWith(RESERVED_PREFIX)) {
      return refused(`cannot register extension with reserved ${RESERVED_PREFIX}* namespace`);
    }
    if (descriptor.messageTypes.length === 0) return refused("message_types must not be empty");
    if (descriptor.modeVersion.trim() === "") return refused("mode_version must not be blank");
    if (descriptor.terminalMessageTypes.length === 0) {
      return refused("terminal_message_types must not be empty");
    }
    for (const terminal of descriptor.terminalMessageTypes) {
      if (terminal !== COMMITMENT) {
        return refused(`terminal message type '${terminal}' is not supported (only Commitment)`);
      }
      if (!descriptor.messageTypes.includes(terminal)) {
        return refused(`terminal message type '${terminal}' is missing from message_types`);
      }
    }
    if (this.#entries.has(mode)) return refused(`mode '${mode}' is already registered`);
    if (!apply) return { ok: true, error: "" };
    // A private copy: the caller's message must not be able to change the registry.
    const registered = clone(ModeDescriptorSchema, descriptor);
    this.#entries.set(mode, {
      descriptor: registered,
      handler: createPassthroughMode(registered),
      strict: false,
      standardsTrack: false,
      builtIn: false,
    });
    return { ok: true, error: "" };
  }

  /** UnregisterExtMode: only dynamic, non-standards-track modes can go (`apply` as for `register`). */
  unregister(mode: string, apply = true): RegistryOutcome {
    const entry = this.#entries.get(mode);
    if (entry === undefined) return refused(`mode '${mode}' not found`);
    if (entry.builtIn) return refused(`mode '${mode}' is built in and cannot be unregistered`);
    if (entry.standardsTrack) {
      return refused(`mode '${mode}' is standards-track and cannot be unregistered`);
    }
    if (apply) this.#entries.delete(mode);
    return { ok: true, error: "" };
  }

  /**
   * PromoteMode: the mode becomes standards-track and strict, optionally under a
   * new name (an empty `promotedName` keeps the current one). It keeps its handler.
   * With `apply` false it only answers whether the change would succeed.
   */
  promote(mode: string, promotedName = "", apply = true): RegistryOutcome {
    const entry = this.#entries.get(mode);
    if (entry === undefined) return refused(`mode '${mode}' not found`, "");
    if (entry.standardsTrack) return refused(`mode '${mode}' is already standards-track`, "");
    const finalName = promotedName === "" ? mode : promotedName;
    if (finalName !== mode) {
      if (finalName.startsWith(RESERVED_PREFIX)) {
        return refused(`cannot promote into the reserved ${RESERVED_PREFIX}* namespace`, "");
      }
      if (finalName.trim() === "") return refused("promoted mode name must not be blank", "");
      if (this.#entries.has(finalName)) {
        return refused(`mode '${finalName}' is already registered`, "");
      }
    }
    if (!apply) return { ok: true, error: "", mode: finalName };
    const descriptor = clone(ModeDescriptorSchema, entry.descriptor);
    descriptor.mode = finalName;
    this.#entries.delete(mode);
    this.#entries.set(finalName, { ...entry, descriptor, standardsTrack: true, strict: true });
    return { ok: true, error: "", mode: finalName };
  }

  /** ListModes: decision, proposal, task, handoff, quorum, then promoted modes by name. */
  listStandards(): ModeDescriptor[] {
    const standards = [...this.#entries.values()].filter((entry) => entry.standardsTrack);
    const fixed = STANDARD_MODE_ORDER.flatMap((name) =>
      standards.filter((entry) => entry.descriptor.mode === name),
    );
    const promoted = sortedByName(
      standards.filter((entry) => !STANDARD_MODE_ORDER.includes(entry.descriptor.mode)),
    );
    return [...fixed, ...promoted].map(copyOfDescriptor);
  }

  /** ListExtModes: every non-standards-track mode, by name. */
  listExtensions(): ModeDescriptor[] {
    return sortedByName([...this.#entries.values()].filter((entry) => !entry.standardsTrack)).map(
      copyOfDescriptor,
    );
  }

  /** Initialize / GetManifest `supported_modes`: every registered name, sorted. */
  allNames(): string[] {
    return [...this.#entries.keys()].sort(compareByteOrder);
  }
}

let builtIns: ModeRegistry | undefined;

/**
 * The built-in modes' policy rules checks ("*" read as Decision), for checking
 * policy files before a runtime exists (`loadPolicyFile(json, builtInPolicyRules)`).
 */
export function builtInPolicyRules(mode: string): PolicyRulesCheck | undefined {
  builtIns ??= new ModeRegistry();
  return builtIns.policyRulesFor(mode);
}

function sortedByName(entries: ModeEntry[]): ModeEntry[] {
  return entries.sort((a, b) => compareByteOrder(a.descriptor.mode, b.descriptor.mode));
}

function copyOfDescriptor(entry: ModeEntry): ModeDescriptor {
  return clone(ModeDescriptorSchema, entry.descriptor);
}
