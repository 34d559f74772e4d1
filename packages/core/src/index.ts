// @macp/core: the MACP runtime kernel. Pure TypeScript, no I/O.
//
// The first part is what a host needs to run a runtime; the second what an
// integrator needs to extend one (modes, stores, transports, observers). Test
// helpers are on `@macp/core/testing`. Everything else is internal.

// ---------------------------------------------------------------- Running a runtime

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
export {
  BUILT_IN_MODE_VERSION,
  DECISION_MODE,
  HANDOFF_MODE,
  MULTI_ROUND_MODE,
  PROPOSAL_MODE,
  QUORUM_MODE,
  STANDARD_MODE_ORDER,
  TASK_MODE,
} from "./modes/built-in-modes.js";
export { builtInPolicyRules } from "./modes/mode-registry.js";
export { DEFAULT_POLICY_ID, type PolicyDefinition } from "./policy/policy-definition.js";
export { loadPolicyFile } from "./policy/policy-file.js";
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
  type ModePlugin,
  type RuntimeInfoOptions,
  type RuntimeLimits,
  type RuntimeLogger,
  type RuntimeOptions,
} from "./runtime-options.js";
export { createMemoryStore, type MemoryStore } from "./store/memory-store.js";

// ---------------------------------------------------------------- Extending a runtime

export type { JsonObject, JsonValue } from "./json.js";
export { isJsonObject } from "./json.js";
export type {
  DueMessage,
  MessageContext,
  ModeHandler,
  ModeStep,
  SessionView,
} from "./mode-handler.js";
export { COMMITMENT, validateCommitmentPayload } from "./modes/commitment.js";
export { serializeModeState } from "./modes/state-json.js";
export type { PolicyRulesCheck } from "./policy/rules-validation.js";
export {
  type ControlOperation,
  composeObservers,
  type RuntimeObserver,
  type StreamRpc,
} from "./runtime-observer.js";
export { decodeLogRecord, encodeLogRecord } from "./store/log-codec.js";
export type {
  IncomingRecord,
  InternalRecord,
  InternalRecordType,
  LogRecord,
  SessionBinding,
} from "./store/log-record.js";
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
