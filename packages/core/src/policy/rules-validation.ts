import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import { err, ok, type Result } from "neverthrow";
import { isJsonObject, type JsonObject } from "../json.js";
import { parseCommitmentRules } from "./policy-rules.js";

/**
 * How a mode checks the `rules` of a policy that targets it (modes.md §9.5
 * steps 5–6): its JSON Schema, its typed reading, its conditional rules. A
 * mode brings one as `ModeHandler.policyRules`; a mode without one accepts any
 * rules object. Returns the reason the rules are refused, if they are.
 */
export interface PolicyRulesCheck {
  check(rules: JsonObject): Result<void, string>;
}

/** The rules check for a policy's `mode` ("*" included), or undefined for free-form rules. */
export type PolicyRulesLookup = (mode: string) => PolicyRulesCheck | undefined;

/**
 * A check from a mode's JSON Schema and typed reader, plus any conditional
 * rules the schema cannot say as clearly. The schema is compiled on first use.
 */
export function schemaRulesCheck<R>(
  family: string,
  schema: object,
  parse: (rules: JsonObject) => Result<R, string>,
  conditions: (rules: R) => Result<void, string> = () => ok(undefined),
): PolicyRulesCheck {
  let validate: ValidateFunction | undefined;
  return {
    check(rules) {
      // strict: false because the spec schemas use annotation keywords (default,
      // description) inside if/then branches that ajv's strict mode would warn about.
      validate ??= new Ajv2020({ allErrors: true, strict: false }).compile(schema);
      if (!validate(rules)) {
        const detail = (validate.errors ?? [])
          .map((error) => `${error.instancePath || "rules"} ${error.message ?? "is invalid"}`)
          .join("; ");
        return err(`rules do not match the ${family} rules schema: ${detail}`);
      }
      const typed = parse(rules);
      if (typed.isErr()) return err(`rules cannot be read as ${family} rules: ${typed.error}`);
      return conditions(typed.value);
    },
  };
}

/**
 * Checks a policy's `rules` (modes.md §9.5 steps 5–7): the target mode's own
 * check, if it has one, then the commitment rule every mode shares.
 */
export function validatePolicyRules(
  rules: JsonObject,
  modeRules: PolicyRulesCheck | undefined,
): Result<void, string> {
  const own = modeRules?.check(rules) ?? ok(undefined);
  if (own.isErr()) return own;
  // Free-form rules may carry an unreadable commitment section: it simply falls
  // back to initiator-only, so only a readable designated_role needs checking.
  const commitment = parseCommitmentRules(rules);
  if (
    commitment.isOk() &&
    commitment.value.authority === "designated_role" &&
    commitment.value.designatedRoles.length === 0
  ) {
    return err(
      "commitment.authority 'designated_role' requires non-empty commitment.designated_roles",
    );
  }
  return ok(undefined);
}

/** Parses the JSON text of a PolicyDescriptor's `rules`. Empty text means `{}` (as the reference runtime reads it). */
export function parseRulesText(text: string): Result<JsonObject, string> {
  if (text.trim() === "") return ok({});
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    return err(
      `rules is not valid JSON: ${cause instanceof Error ? cause.message : String(cause)}`,
    );
  }
  if (!isJsonObject(parsed)) return err("rules must be a JSON object");
  return ok(parsed);
}
