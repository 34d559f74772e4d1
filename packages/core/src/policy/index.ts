// Governance policy (RFC-MACP-0012): the registry, rule parsing and validation,
// and the Commitment evaluators the modes call.

export {
  type DecisionPolicyInput,
  evaluateDecisionPolicy,
  type VoteResult,
} from "./decision-evaluator.js";
export {
  evaluateHandoffPolicy,
  evaluateProposalPolicy,
  evaluateQuorumPolicy,
  evaluateTaskPolicy,
  type HandoffPolicyInput,
  type ProposalPolicyInput,
  type QuorumPolicyInput,
  type TaskPolicyInput,
} from "./mode-evaluators.js";
export { DEFAULT_POLICY_ID, type PolicyDefinition } from "./policy-definition.js";
export {
  MAX_RULES_DEPTH,
  type PolicyInput,
  policyDescriptorOf,
  policyInputFromDescriptor,
  SUPPORTED_POLICY_SCHEMA_VERSIONS,
  validatePolicyInput,
} from "./policy-descriptor.js";
export { loadPolicyFile } from "./policy-file.js";
export { DEFAULT_POLICY, PolicyRegistry } from "./policy-registry.js";
export {
  type CommitmentRules,
  type CriticalObjectionAction,
  commitmentRulesOrDefault,
  type DecisionRules,
  type HandoffRules,
  type ProposalRules,
  parseCommitmentRules,
  parseDecisionRules,
  parseHandoffRules,
  parseProposalRules,
  parseQuorumRules,
  parseTaskRules,
  type QuorumRules,
  type TaskRules,
} from "./policy-rules.js";
export { type PolicyVerdict, verdictToResult } from "./policy-verdict.js";
export { validatePolicyRules } from "./rules-validation.js";
