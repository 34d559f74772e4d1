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
export { DEFAULT_POLICY_ID, type PolicyDefinition } from "./policy/policy-definition.js";
export {
  type ListSessionsOptions,
  type MacpRuntime,
  MacpStreamError,
  type RecoveryReport,
  type RegistryOutcome,
  type SessionStream,
  type SessionStreamOutput,
} from "./runtime-api.js";
export { decodeLogRecord, encodeLogRecord } from "./store/log-codec.js";
export type {
  IncomingRecord,
  InternalRecord,
  InternalRecordType,
  LogRecord,
  SessionBinding,
} from "./store/log-record.js";
export type { SessionStore, StoredSession } from "./store/session-store.js";
