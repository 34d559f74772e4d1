// The Handoff Commitment evaluator (modes.md §9.10): it sees only what its rules talk
// about, plus the requested outcome; negative outcomes are exempt from the
// checks that only make sense for positive ones.

import type { PolicyDefinition } from "../../policy/policy-definition.js";
import {
  allowVerdict,
  evaluateWithRules,
  type PolicyVerdict,
} from "../../policy/policy-verdict.js";
import { parseHandoffRules } from "./handoff-rules.js";

export interface HandoffPolicyInput {
  readonly outcomePositive: boolean;
}

/** Handoff rules constrain timing only (implicit accept), so the evaluator allows once the frame passes. */
export function evaluateHandoffPolicy(
  policy: PolicyDefinition,
  _input: HandoffPolicyInput,
): PolicyVerdict {
  return evaluateWithRules(policy, parseHandoffRules, () => allowVerdict());
}
