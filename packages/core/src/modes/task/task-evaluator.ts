// The Task Commitment evaluator (modes.md §9.12): it sees only what its rules talk
// about, plus the requested outcome; negative outcomes are exempt from the
// checks that only make sense for positive ones.

import type { PolicyDefinition } from "../../policy/policy-definition.js";
import { evaluateWithRules, type PolicyVerdict, verdictFrom } from "../../policy/policy-verdict.js";
import { parseTaskRules } from "./task-rules.js";

export interface TaskPolicyInput {
  /** The terminal report is a TaskComplete with non-empty output. */
  readonly hasOutput: boolean;
  readonly outcomePositive: boolean;
}

export function evaluateTaskPolicy(
  policy: PolicyDefinition,
  input: TaskPolicyInput,
): PolicyVerdict {
  return evaluateWithRules(policy, parseTaskRules, (rules) => {
    const deny: string[] = [];
    if (input.outcomePositive && rules.completion.requireOutput && !input.hasOutput) {
      deny.push("completion.require_output: a positive outcome needs a completed task with output");
    }
    return verdictFrom(deny, []);
  });
}
