import { err, ok, type Result } from "neverthrow";
import { ErrorCode, type MacpError, macpError } from "../errors.js";
import { isJsonObject } from "../json.js";
import type { PolicyDefinition } from "./policy-definition.js";
import { freezePolicy, validatePolicyInput } from "./policy-descriptor.js";
import type { PolicyRulesLookup } from "./rules-validation.js";

const REQUIRED_KEYS = ["policy_id", "mode", "description", "rules", "schema_version"] as const;

/**
 * Reads one MACP_POLICIES_DIR document (modes.md §9.14): a PolicyDefinition
 * object with all five keys, `rules` an actual JSON object, then the
 * RegisterPolicy checks. Uniqueness across files is the registry's check. The
 * host reads and JSON-parses the file and treats any error as fatal at start-up.
 * Without `modeRules` only the checks every mode shares run here; the runtime
 * applies the target mode's own rules check when it registers the policy.
 */
export function loadPolicyFile(
  json: unknown,
  modeRules: PolicyRulesLookup = () => undefined,
): Result<PolicyDefinition, MacpError> {
  const invalid = (reason: string) =>
    err(macpError(ErrorCode.INVALID_POLICY_DEFINITION, `policy file: ${reason}`));
  if (!isJsonObject(json)) return invalid("the document must be a JSON object");
  for (const key of REQUIRED_KEYS) {
    if (!Object.hasOwn(json, key)) return invalid(`missing required key '${key}'`);
  }
  const { policy_id, mode, description, rules, schema_version } = json;
  if (typeof policy_id !== "string") return invalid("policy_id must be a string");
  if (typeof mode !== "string") return invalid("mode must be a string");
  if (typeof description !== "string") return invalid("description must be a string");
  if (!isJsonObject(rules)) return invalid("rules must be a JSON object");
  if (typeof schema_version !== "number" || !Number.isSafeInteger(schema_version)) {
    return invalid("schema_version must be an integer");
  }
  const input = { policyId: policy_id, mode, description, rules, schemaVersion: schema_version };
  const valid = validatePolicyInput(input, modeRules);
  if (valid.isErr()) return err(macpError(ErrorCode.INVALID_POLICY_DEFINITION, valid.error));
  return ok(freezePolicy(input, 0));
}
