import { create } from "@bufbuild/protobuf";
import { type PolicyDescriptor, PolicyDescriptorSchema } from "@macp/proto";
import { err, ok, type Result } from "neverthrow";
import { isJsonObject, type JsonObject, nestsDeeperThan } from "../json.js";
import { frozenJsonCopy } from "./frozen-json.js";
import { DEFAULT_POLICY_ID, type PolicyDefinition } from "./policy-definition.js";
import { type PolicyRulesLookup, parseRulesText, validatePolicyRules } from "./rules-validation.js";

/** A policy as a caller submits it: everything but the registration time. */
export type PolicyInput = Omit<PolicyDefinition, "registeredAtUnixMs">;

/** Schema versions this runtime evaluates (modes.md §9.5): v2 only adds optional fields. */
export const SUPPORTED_POLICY_SCHEMA_VERSIONS: ReadonlySet<number> = new Set([1, 2]);

/**
 * The deepest nesting accepted in `rules`. The standard modes' rules nest three
 * levels; the cap keeps every recursive walk over registered rules (freezing,
 * schema validation, serialisation into session logs) far from the stack limit.
 */
export const MAX_RULES_DEPTH = 32;

/** Prefix of every refusal text, so callers see the RFC's code even though registration answers with text. */
const INVALID = "INVALID_POLICY_DEFINITION";

/**
 * The content checks of RegisterPolicy, in the reference runtime's order
 * (modes.md §9.5 steps 1–7), with the two fixes the spec recommends:
 * schema_version must be 1 or 2, and (in {@link policyInputFromDescriptor})
 * unparseable rules are refused rather than read as `{}`. Uniqueness is the
 * registry's check. `modeRules` gives the target mode's own rules check.
 */
export function validatePolicyInput(
  input: PolicyInput,
  modeRules: PolicyRulesLookup,
): Result<void, string> {
  return checkIdentity(input.policyId, input.schemaVersion).andThen(() => {
    if (!isJsonObject(input.rules)) return err(`${INVALID}: rules must be a JSON object`);
    if (nestsDeeperThan(input.rules, MAX_RULES_DEPTH)) {
      return err(`${INVALID}: rules nest deeper than ${MAX_RULES_DEPTH} levels`);
    }
    return validatePolicyRules(input.rules, modeRules(input.mode)).mapErr(
      (reason) => `${INVALID}: ${reason}`,
    );
  });
}

/** Steps 1–3 of §9.5, which come before anything about the rules. */
function checkIdentity(policyId: string, schemaVersion: number): Result<void, string> {
  if (policyId.trim() === "") return err(`${INVALID}: policy_id must not be blank`);
  if (policyId === DEFAULT_POLICY_ID) {
    return err(`${INVALID}: policy_id '${DEFAULT_POLICY_ID}' is reserved`);
  }
  if (!SUPPORTED_POLICY_SCHEMA_VERSIONS.has(schemaVersion)) {
    return err(`${INVALID}: schema_version ${schemaVersion} is not supported (use 1 or 2)`);
  }
  return ok(undefined);
}

/** Reads a wire descriptor (rules as JSON text) into a policy input; refuses unparseable rules. */
export function policyInputFromDescriptor(
  descriptor: PolicyDescriptor,
): Result<PolicyInput, string> {
  return checkIdentity(descriptor.policyId, descriptor.schemaVersion)
    .andThen(() => parseRulesText(descriptor.rules).mapErr((reason) => `${INVALID}: ${reason}`))
    .map((rules) => ({
      policyId: descriptor.policyId,
      mode: descriptor.mode,
      description: descriptor.description,
      rules,
      schemaVersion: descriptor.schemaVersion,
    }));
}

/** The wire form of a policy: rules as JSON text. */
export function policyDescriptorOf(policy: PolicyDefinition): PolicyDescriptor {
  return create(PolicyDescriptorSchema, {
    policyId: policy.policyId,
    mode: policy.mode,
    description: policy.description,
    rules: JSON.stringify(policy.rules),
    schemaVersion: policy.schemaVersion,
    registeredAtUnixMs: BigInt(policy.registeredAtUnixMs),
  });
}

/** A registered, immutable definition: rules deep-copied and frozen. */
export function freezePolicy(input: PolicyInput, registeredAtUnixMs: number): PolicyDefinition {
  const rules: JsonObject = frozenJsonCopy(input.rules);
  return Object.freeze({
    policyId: input.policyId,
    mode: input.mode,
    description: input.description,
    rules,
    schemaVersion: input.schemaVersion,
    registeredAtUnixMs,
  });
}
