import { create } from "@bufbuild/protobuf";
import { type ModeDescriptor, ModeDescriptorSchema } from "@macp/proto";
import type { ModeEntry, ModeHandler } from "../mode-handler.js";
import { decisionMode } from "./decision/decision-mode.js";
import { handoffMode } from "./handoff/handoff-mode.js";
import { multiRoundMode } from "./multi-round/multi-round-mode.js";
import { proposalMode } from "./proposal/proposal-mode.js";
import { quorumMode } from "./quorum/quorum-mode.js";
import { taskMode } from "./task/task-mode.js";

export const DECISION_MODE = "macp.mode.decision.v1";
export const PROPOSAL_MODE = "macp.mode.proposal.v1";
export const TASK_MODE = "macp.mode.task.v1";
export const HANDOFF_MODE = "macp.mode.handoff.v1";
export const QUORUM_MODE = "macp.mode.quorum.v1";
export const MULTI_ROUND_MODE = "ext.multi_round.v1";

/** The standard modes in the order ListModes reports them (modes.md §1.2). */
export const STANDARD_MODE_ORDER: readonly string[] = [
  DECISION_MODE,
  PROPOSAL_MODE,
  TASK_MODE,
  HANDOFF_MODE,
  QUORUM_MODE,
];

/** Every built-in mode speaks version 1.0.0 of its message set. */
export const BUILT_IN_MODE_VERSION = "1.0.0";

// The reference runtime advertises "protobuf"; RFC-MACP-0002 §4 recommends "proto".
// Both keys point at the same module so either kind of client finds it.
const SCHEMA_MODULE = "buf.build/multiagentcoordinationprotocol/macp";

interface BuiltInMode {
  readonly mode: string;
  readonly title: string;
  readonly description: string;
  readonly determinismClass: string;
  readonly participantModel: string;
  readonly messageTypes: readonly string[];
  readonly handler: ModeHandler;
  readonly standardsTrack: boolean;
}

const BUILT_IN_MODES: readonly BuiltInMode[] = [
  {
    mode: DECISION_MODE,
    title: "Decision Mode",
    description:
      "Participants propose options, evaluate them, raise objections and vote; an authorized Commitment records the decision.",
    determinismClass: "semantic-deterministic",
    participantModel: "declared",
    messageTypes: ["SessionStart", "Proposal", "Evaluation", "Objection", "Vote", "Commitment"],
    handler: decisionMode,
    standardsTrack: true,
  },
  {
    mode: PROPOSAL_MODE,
    title: "Proposal Mode",
    description:
      "Peers negotiate through proposals and counterproposals, accepting, rejecting or withdrawing them until a Commitment closes the negotiation.",
    determinismClass: "semantic-deterministic",
    participantModel: "peer",
    messageTypes: [
      "SessionStart",
      "Proposal",
      "CounterProposal",
      "Accept",
      "Reject",
      "Withdraw",
      "Commitment",
    ],
    handler: proposalMode,
    standardsTrack: true,
  },
  {
    mode: TASK_MODE,
    title: "Task Mode",
    description:
      "An orchestrator delegates one bounded task; an assignee takes it on, reports progress and completion or failure, and a Commitment settles it.",
    determinismClass: "structural-only",
    participantModel: "orchestrated",
    messageTypes: [
      "SessionStart",
      "TaskRequest",
      "TaskAccept",
      "TaskReject",
      "TaskUpdate",
      "TaskComplete",
      "TaskFail",
      "Commitment",
    ],
    handler: taskMode,
    standardsTrack: true,
  },
  {
    mode: HANDOFF_MODE,
    title: "Handoff Mode",
    description:
      "The current owner offers a scoped transfer of responsibility with supporting context; the target accepts or declines and a Commitment records the result.",
    determinismClass: "context-frozen",
    participantModel: "delegated",
    messageTypes: [
      "SessionStart",
      "HandoffOffer",
      "HandoffContext",
      "HandoffAccept",
      "HandoffDecline",
      "Commitment",
    ],
    handler: handoffMode,
    standardsTrack: true,
  },
  {
    mode: QUORUM_MODE,
    title: "Quorum Mode",
    description:
      "A coordinator puts a single request to the participants, who approve, reject or abstain until the approval threshold is met or out of reach.",
    determinismClass: "semantic-deterministic",
    participantModel: "quorum",
    messageTypes: ["SessionStart", "ApprovalRequest", "Approve", "Reject", "Abstain", "Commitment"],
    handler: quorumMode,
    standardsTrack: true,
  },
  {
    mode: MULTI_ROUND_MODE,
    title: "Multi-Round Mode",
    description:
      "Participants revise their contributions round after round until all of them hold the same value, then the initiator commits the converged result.",
    determinismClass: "semantic-deterministic",
    participantModel: "peer",
    messageTypes: ["SessionStart", "Contribute", "Commitment"],
    handler: multiRoundMode,
    standardsTrack: false,
  },
];

function descriptorOf(mode: BuiltInMode): ModeDescriptor {
  return create(ModeDescriptorSchema, {
    mode: mode.mode,
    modeVersion: BUILT_IN_MODE_VERSION,
    title: mode.title,
    description: mode.description,
    determinismClass: mode.determinismClass,
    participantModel: mode.participantModel,
    messageTypes: [...mode.messageTypes],
    terminalMessageTypes: ["Commitment"],
    schemaUris: { proto: SCHEMA_MODULE, protobuf: SCHEMA_MODULE },
  });
}

/**
 * The six modes every runtime starts with (modes.md §1.1): the five standard
 * modes and the multi-round extension. All are built in and strict. Each call
 * returns fresh descriptors, so a registry may rename its copies freely.
 */
export function builtInModes(): ModeEntry[] {
  return BUILT_IN_MODES.map((mode) => ({
    descriptor: descriptorOf(mode),
    handler: mode.handler,
    strict: true,
    standardsTrack: mode.standardsTrack,
    builtIn: true,
  }));
}
