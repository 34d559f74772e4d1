import type { Result } from "neverthrow";
import type { JsonObject } from "../../json.js";
import { type CommitmentRules, RuleReader } from "../../policy/policy-rules.js";
import { type PolicyRulesCheck, schemaRulesCheck } from "../../policy/rules-validation.js";
import { handoffRulesSchema } from "./handoff-rules-schema.js";

// The typed view of a handoff policy's `rules` object (modes.md §9.13).

export interface HandoffRules {
  /** 0 = no implicit accept. */
  readonly acceptance: { readonly implicitAcceptTimeoutMs: number };
  readonly commitment: CommitmentRules;
}

export function parseHandoffRules(rules: JsonObject): Result<HandoffRules, string> {
  const reader = new RuleReader();
  const acceptance = reader.section(rules, "acceptance", "");
  return reader.finish<HandoffRules>({
    acceptance: {
      implicitAcceptTimeoutMs: reader.unsigned(
        acceptance,
        "implicit_accept_timeout_ms",
        "acceptance.",
        0,
      ),
    },
    commitment: reader.commitment(rules),
  });
}

/** How a policy for this mode is checked at registration (modes.md §9.5 steps 5–6). */
export const handoffPolicyRules: PolicyRulesCheck = schemaRulesCheck(
  "handoff",
  handoffRulesSchema,
  parseHandoffRules,
);
