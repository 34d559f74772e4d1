import type { Result } from "neverthrow";
import type { JsonObject } from "../../json.js";
import { type CommitmentRules, RuleReader } from "../../policy/policy-rules.js";
import { type PolicyRulesCheck, schemaRulesCheck } from "../../policy/rules-validation.js";
import { quorumRulesSchema } from "./quorum-rules-schema.js";

// The typed view of a quorum policy's `rules` object (modes.md §9.12).

export interface QuorumRules {
  /** `value` 0 means "no override of required_approvals". */
  readonly threshold: { readonly type: string; readonly value: number };
  readonly abstention: { readonly countsTowardQuorum: boolean; readonly interpretation: string };
  readonly commitment: CommitmentRules;
}

export function parseQuorumRules(rules: JsonObject): Result<QuorumRules, string> {
  const reader = new RuleReader();
  const threshold = reader.section(rules, "threshold", "");
  const abstention = reader.section(rules, "abstention", "");
  return reader.finish<QuorumRules>({
    threshold: {
      type: reader.string(threshold, "type", "threshold.", "n_of_m"),
      value: reader.number(threshold, "value", "threshold.", 0),
    },
    abstention: {
      countsTowardQuorum: reader.bool(abstention, "counts_toward_quorum", "abstention.", false),
      interpretation: reader.string(abstention, "interpretation", "abstention.", "neutral"),
    },
    commitment: reader.commitment(rules),
  });
}

/** How a policy for this mode is checked at registration (modes.md §9.5 steps 5–6). */
export const quorumPolicyRules: PolicyRulesCheck = schemaRulesCheck(
  "quorum",
  quorumRulesSchema,
  parseQuorumRules,
);
