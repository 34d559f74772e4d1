import type { Result } from "neverthrow";
import type { JsonObject } from "../../json.js";
import { type CommitmentRules, RuleReader } from "../../policy/policy-rules.js";
import { type PolicyRulesCheck, schemaRulesCheck } from "../../policy/rules-validation.js";
import { taskRulesSchema } from "./task-rules-schema.js";

// The typed view of a task policy's `rules` object (modes.md §9.11).

export interface TaskRules {
  readonly assignment: { readonly allowReassignmentOnReject: boolean };
  readonly completion: { readonly requireOutput: boolean };
  readonly commitment: CommitmentRules;
}

export function parseTaskRules(rules: JsonObject): Result<TaskRules, string> {
  const reader = new RuleReader();
  const assignment = reader.section(rules, "assignment", "");
  const completion = reader.section(rules, "completion", "");
  return reader.finish<TaskRules>({
    assignment: {
      allowReassignmentOnReject: reader.bool(
        assignment,
        "allow_reassignment_on_reject",
        "assignment.",
        false,
      ),
    },
    completion: { requireOutput: reader.bool(completion, "require_output", "completion.", false) },
    commitment: reader.commitment(rules),
  });
}

/** How a policy for this mode is checked at registration (modes.md §9.5 steps 5–6). */
export const taskPolicyRules: PolicyRulesCheck = schemaRulesCheck(
  "task",
  taskRulesSchema,
  parseTaskRules,
);
