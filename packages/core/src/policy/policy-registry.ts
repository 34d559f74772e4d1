import type { PolicyDescriptor } from "@macp/proto";
import { err, ok, type Result } from "neverthrow";
import { ErrorCode, type MacpError, macpError } from "../errors.js";
import { compareByteOrder } from "../text/byte-order.js";
import { DEFAULT_POLICY_ID, type PolicyDefinition } from "./policy-definition.js";
import {
  freezePolicy,
  type PolicyInput,
  policyInputFromDescriptor,
  validatePolicyInput,
} from "./policy-descriptor.js";
import type { PolicyRulesLookup } from "./rules-validation.js";

/**
 * The built-in default policy (RFC-MACP-0012 §5). Its rules spell out the
 * defaults explicitly, as the reference runtime lists them; they behave exactly
 * like `{}`: only the modes' own rules apply, and Commitment stays initiator-only.
 */
export const DEFAULT_POLICY: PolicyDefinition = freezePolicy(
  {
    policyId: DEFAULT_POLICY_ID,
    mode: "*",
    description:
      "Default policy \u2014 mode built-in rules apply with no additional governance constraints",
    schemaVersion: 1,
    rules: {
      voting: { algorithm: "none", quorum: { type: "count", value: 0 } },
      objection_handling: { critical_severity_vetoes: false, veto_threshold: 1 },
      evaluation: { required_before_voting: false, minimum_confidence: 0 },
      commitment: { authority: "initiator_only", designated_roles: [], require_vote_quorum: false },
    },
  },
  0,
);

/**
 * The governance policy registry (modes.md §9). Pure bookkeeping: who may change
 * it, read-only mode and change notifications are the kernel's business.
 * Each mode's own rules check comes through `modeRules` (the mode registry's),
 * so this registry never knows a concrete mode.
 */
export class PolicyRegistry {
  readonly #policies = new Map<string, PolicyDefinition>([[DEFAULT_POLICY_ID, DEFAULT_POLICY]]);
  readonly #modeRules: PolicyRulesLookup;

  constructor(modeRules: PolicyRulesLookup) {
    this.#modeRules = modeRules;
  }

  get(policyId: string): PolicyDefinition | undefined {
    return this.#policies.get(policyId);
  }

  /**
   * RegisterPolicy: validates the descriptor (modes.md §9.5) and adds it.
   * The error is the refusal text for `{ok: false, error}`. With `apply` false
   * it only answers whether the change would succeed.
   */
  register(
    descriptor: PolicyDescriptor,
    nowMs: number,
    apply = true,
  ): Result<PolicyDefinition, string> {
    return policyInputFromDescriptor(descriptor).andThen((input) =>
      this.registerDefinition(input, nowMs, apply),
    );
  }

  /** Registers an already-parsed policy (e.g. from MACP_POLICIES_DIR) with the same checks. */
  registerDefinition(
    input: PolicyInput,
    nowMs: number,
    apply = true,
  ): Result<PolicyDefinition, string> {
    const valid = validatePolicyInput(input, this.#modeRules);
    if (valid.isErr()) return err(valid.error);
    if (this.#policies.has(input.policyId)) {
      return err(`policy '${input.policyId}' is already registered`);
    }
    const policy = freezePolicy(input, nowMs);
    if (apply) this.#policies.set(policy.policyId, policy);
    return ok(policy);
  }

  /** UnregisterPolicy (`apply` as for `register`). Sessions that bound the policy keep their own copy. */
  unregister(policyId: string, apply = true): Result<PolicyDefinition, string> {
    if (policyId === DEFAULT_POLICY_ID) {
      return err(`policy '${DEFAULT_POLICY_ID}' is built in and cannot be unregistered`);
    }
    const existing = this.#policies.get(policyId);
    if (existing === undefined) return err(`policy '${policyId}' not found`);
    if (apply) this.#policies.delete(policyId);
    return ok(existing);
  }

  /** ListPolicies: "" lists all; otherwise policies for that mode or for every mode ("*"). Sorted by id. */
  list(modeFilter: string): PolicyDefinition[] {
    return this.all().filter(
      (policy) => modeFilter === "" || policy.mode === modeFilter || policy.mode === "*",
    );
  }

  /** Every policy, sorted by id. */
  all(): PolicyDefinition[] {
    return [...this.#policies.values()].sort((a, b) => compareByteOrder(a.policyId, b.policyId));
  }

  /**
   * Binds a policy at SessionStart (modes.md §9.6): an empty version means the
   * default policy; an unknown one is UNKNOWN_POLICY_VERSION; a policy for
   * another mode is INVALID_POLICY_DEFINITION.
   */
  resolveForSession(policyVersion: string, mode: string): Result<PolicyDefinition, MacpError> {
    const policyId = policyVersion === "" ? DEFAULT_POLICY_ID : policyVersion;
    const policy = this.#policies.get(policyId);
    if (policy === undefined) {
      return err(
        macpError(ErrorCode.UNKNOWN_POLICY_VERSION, `policy '${policyId}' is not registered`),
      );
    }
    if (policy.mode !== "*" && policy.mode !== mode) {
      return err(
        macpError(
          ErrorCode.INVALID_POLICY_DEFINITION,
          `policy '${policyId}' targets mode '${policy.mode}', not '${mode}'`,
        ),
      );
    }
    return ok(policy);
  }
}
