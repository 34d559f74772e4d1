import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import { err, ok, type Result } from "neverthrow";
import { isJsonObject, type JsonObject } from "../json.js";
import { decisionRulesSchema } from "../modes/decision/decision-rules-schema.js";
import { handoffRulesSchema } from "../modes/handoff/handoff-rules-schema.js";
import { proposalRulesSchema } from "../modes/proposal/proposal-rules-schema.js";
import { quorumRulesSchema } from "../modes/quorum/quorum-rules-schema.js";
import { taskRulesSchema } from "../modes/task/task-rules-schema.js";
import {
  parseCommitmentRules,
  parseDecisionRules,
  parseHandoffRules,
  parseProposalRules,
  parseQuorumRules,
  parseTaskRules,
} from "./policy-rules.js";

/** Which rule family a policy's `mode` selects. "*" policies are read as Decision rules (modes.md §9.5). */
type RulesFamily = "decision" | "proposal" | "task" | "quorum" | "handoff" | "free-form";

export function rulesFamilyOf(mode: string): RulesFamily {
  switch (mode) {
    case "*":
    case "macp.mode.decision.v1":
      return "decision";
    case "macp.mode.proposal.v1":
      return "proposal";
    case "macp.mode.task.v1":
      return "task";
    case "macp.mode.quorum.v1":
      return "quorum";
    case "macp.mode.handoff.v1":
      return "handoff";
    default:
      return "free-form";
  }
}

const schemas = {
  decision: decisionRulesSchema,
  proposal: proposalRulesSchema,
  task: taskRulesSchema,
  quorum: quorumRulesSchema,
  handoff: handoffRulesSchema,
} as const;

type SchemaFamily = keyof typeof schemas;

// Compiling a schema is expensive and ajv refuses to add the same $id twice, so
// each validator is compiled once, on first use, and shared.
let compiledValidators: Map<SchemaFamily, ValidateFunction> | undefined;

function validatorFor(family: SchemaFamily): ValidateFunction {
  if (compiledValidators === undefined) {
    // strict: false because the spec schemas use annotation keywords (default,
    // description) inside if/then branches that ajv's strict mode would warn about.
    const ajv = new Ajv2020({ allErrors: true, strict: false });
    compiledValidators = new Map(
      (Object.keys(schemas) as SchemaFamily[]).map((name) => [name, ajv.compile(schemas[name])]),
    );
  }
  const validator = compiledValidators.get(family);
  if (validator === undefined) throw new Error(`no rules schema for ${family}`);
  return validator;
}

const parsers = {
  decision: parseDecisionRules,
  proposal: parseProposalRules,
  task: parseTaskRules,
  quorum: parseQuorumRules,
  handoff: parseHandoffRules,
} as const;

/**
 * Checks a `rules` object for a policy targeting `mode` (modes.md §9.5 steps 5–7):
 * the mode's JSON Schema, the runtime's typed reading, then the conditional
 * rules. Returns the reason it is refused, if it is.
 */
export function validatePolicyRules(mode: string, rules: JsonObject): Result<void, string> {
  const family = rulesFamilyOf(mode);
  if (family !== "free-form") {
    const validate = validatorFor(family);
    if (!validate(rules)) {
      const detail = (validate.errors ?? [])
        .map((error) => `${error.instancePath || "rules"} ${error.message ?? "is invalid"}`)
        .join("; ");
      return err(`rules do not match the ${family} rules schema: ${detail}`);
    }
    const typed = parsers[family](rules);
    if (typed.isErr()) return err(`rules cannot be read as ${family} rules: ${typed.error}`);
  }
  if (family === "decision") {
    const decision = parseDecisionRules(rules);
    if (decision.isOk()) {
      const { algorithm, threshold, weights } = decision.value.voting;
      if (algorithm === "weighted" && weights.size === 0) {
        return err("voting.algorithm 'weighted' requires non-empty voting.weights");
      }
      // The default threshold (0.5) fails this too, so supermajority must name its threshold.
      if (algorithm === "supermajority" && !(threshold > 0.5)) {
        return err("voting.algorithm 'supermajority' requires voting.threshold > 0.5");
      }
    }
  }
  const commitment = parseCommitmentRules(rules);
  if (family === "free-form" && commitment.isErr()) {
    // Free-form rules are any object; only a designated_role needs checking, and
    // an unreadable commitment section simply falls back to initiator-only.
    return ok(undefined);
  }
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
