// The coordination modes: built-in handlers, the passthrough handler for
// dynamically registered modes, the mode registry and the shared Commitment rules.

export { compareByteOrder } from "../text/byte-order.js";
export {
  BUILT_IN_MODE_VERSION,
  builtInModes,
  DECISION_MODE,
  HANDOFF_MODE,
  MULTI_ROUND_MODE,
  PROPOSAL_MODE,
  QUORUM_MODE,
  STANDARD_MODE_ORDER,
  TASK_MODE,
} from "./built-in-modes.js";
export {
  COMMITMENT,
  checkCommitmentAuthority,
  checkInitiatorCommitment,
  isCommitmentAuthority,
  requiredOutcomeForAction,
  validateCommitmentPayload,
} from "./commitment.js";
export {
  type DecisionEvaluation,
  type DecisionObjection,
  type DecisionPhase,
  type DecisionProposal,
  type DecisionState,
  type DecisionVote,
  decisionMode,
} from "./decision-mode.js";
export {
  type HandoffContextEntry,
  type HandoffDisposition,
  type HandoffOffer,
  type HandoffState,
  handoffMode,
  IMPLICIT_ACCEPT_REASON,
  implicitAcceptMessageId,
} from "./handoff-mode.js";
export { ModeRegistry } from "./mode-registry.js";
export { type MultiRoundState, multiRoundMode, parseContribution } from "./multi-round-mode.js";
export { createPassthroughMode } from "./passthrough-mode.js";
export { PersistentList } from "./persistent-list.js";
export { PersistentMap } from "./persistent-map.js";
export { PersistentNestedMap } from "./persistent-nested-map.js";
export {
  type ProposalDisposition,
  type ProposalPhase,
  type ProposalRecord,
  type ProposalRejection,
  type ProposalState,
  type ProposalTerminalRejection,
  proposalMode,
} from "./proposal-mode.js";
export {
  type ApprovalRequest,
  type Ballot,
  type BallotChoice,
  type QuorumState,
  quorumMode,
} from "./quorum-mode.js";
export { bytesJson, serializeModeState } from "./state-json.js";
export {
  type TaskRecord,
  type TaskRejection,
  type TaskState,
  type TaskTerminalReport,
  type TaskUpdate,
  taskMode,
} from "./task-mode.js";
