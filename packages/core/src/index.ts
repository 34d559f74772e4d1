// @macp/core: the MACP runtime kernel. Pure TypeScript, no I/O.

export { ErrorCode, errorDetails, type MacpError, macpError } from "./errors.js";
export {
  type AuthenticationFailure,
  type Caller,
  createDevIdentity,
  createIdentity,
  type Identity,
  type IdentityOptions,
  isAuthenticated,
} from "./identity.js";
export type { JsonObject, JsonValue } from "./json.js";
export { isJsonObject } from "./json.js";
export type {
  DueMessage,
  MessageContext,
  ModeEntry,
  ModeHandler,
  ModeStep,
  SessionView,
} from "./mode-handler.js";
export {
  BUILT_IN_MODE_VERSION,
  builtInModes,
  COMMITMENT,
  compareByteOrder,
  createPassthroughMode,
  DECISION_MODE,
  type DecisionState,
  HANDOFF_MODE,
  type HandoffState,
  IMPLICIT_ACCEPT_REASON,
  implicitAcceptMessageId,
  isCommitmentAuthority,
  ModeRegistry,
  MULTI_ROUND_MODE,
  type MultiRoundState,
  PersistentList,
  PersistentMap,
  PersistentNestedMap,
  PROPOSAL_MODE,
  type ProposalState,
  QUORUM_MODE,
  type QuorumState,
  requiredOutcomeForAction,
  STANDARD_MODE_ORDER,
  serializeModeState,
  TASK_MODE,
  type TaskState,
  validateCommitmentPayload,
} from "./modes/index.js";
export {
  DEFAULT_POLICY,
  evaluateDecisionPolicy,
  evaluateHandoffPolicy,
  evaluateProposalPolicy,
  evaluateQuorumPolicy,
  evaluateTaskPolicy,
  loadPolicyFile,
  type PolicyInput,
  PolicyRegistry,
  type PolicyVerdict,
  policyDescriptorOf,
  policyInputFromDescriptor,
  SUPPORTED_POLICY_SCHEMA_VERSIONS,
  validatePolicyInput,
  validatePolicyRules,
  verdictToResult,
} from "./policy/index.js";
export { DEFAULT_POLICY_ID, type PolicyDefinition } from "./policy/policy-definition.js";
export { createRuntime } from "./runtime.js";
export {
  type ListSessionsOptions,
  type MacpRuntime,
  MacpStreamError,
  type RecoveryReport,
  type RegistryOutcome,
  type SessionSnapshot,
  type SessionStream,
  type SessionStreamOutput,
} from "./runtime-api.js";
export {
  type Clock,
  DEFAULT_LIMITS,
  type RuntimeInfoOptions,
  type RuntimeLimits,
  type RuntimeLogger,
  type RuntimeOptions,
} from "./runtime-options.js";
export { decodeLogRecord, encodeLogRecord } from "./store/log-codec.js";
export type {
  IncomingRecord,
  InternalRecord,
  InternalRecordType,
  LogRecord,
  SessionBinding,
} from "./store/log-record.js";
export { createMemoryStore, type MemoryStore } from "./store/memory-store.js";
export type { SessionStore, StoredSession } from "./store/session-store.js";
export {
  type ClusterListener,
  isSharedStore,
  type OpenSessionLimit,
  type RegistryChange,
  type SessionSummary,
  type SharedAppendOutcome,
  type SharedSessionStore,
} from "./store/shared-session-store.js";
