import { type Envelope, task } from "@macp/proto";
import { err, ok, type Result } from "neverthrow";
import type { MacpError } from "../../errors.js";
import type { JsonValue } from "../../json.js";
import type { ModeHandler, ModeStep, SessionView } from "../../mode-handler.js";
import { rulesOrDefaults } from "../../policy/policy-rules.js";
import { verdictToResult } from "../../policy/policy-verdict.js";
import { authorizeOrchestrated, COMMITMENT, validateCommitmentPayload } from "../commitment.js";
import {
  decodePayload,
  forbidden,
  invalidEnvelope,
  isDeclaredParticipant,
  policyDenied,
  requireInitiator,
} from "../mode-support.js";
import { bytesJson } from "../state-json.js";
import { evaluateTaskPolicy } from "./task-evaluator.js";
import { parseTaskRules, type TaskRules, taskPolicyRules } from "./task-rules.js";

// macp.mode.task.v1 (modes.md §4).

export interface TaskRecord {
  readonly taskId: string;
  readonly title: string;
  readonly instructions: string;
  /** Empty: any declared participant other than the initiator may take it. */
  readonly requestedAssignee: string;
  readonly input: Uint8Array;
  readonly deadlineUnixMs: bigint;
  readonly requester: string;
}

export interface TaskRejection {
  readonly taskId: string;
  readonly assignee: string;
  readonly reason: string;
}

export interface TaskUpdate {
  readonly taskId: string;
  readonly status: string;
  readonly progress: number;
  readonly message: string;
  readonly partialOutput: Uint8Array;
  readonly sender: string;
}

export type TaskTerminalReport =
  | {
      readonly kind: "Complete";
      readonly taskId: string;
      readonly assignee: string;
      readonly output: Uint8Array;
      readonly summary: string;
    }
  | {
      readonly kind: "Fail";
      readonly taskId: string;
      readonly assignee: string;
      readonly errorCode: string;
      readonly reason: string;
      readonly retryable: boolean;
    };

export interface TaskState {
  readonly task: TaskRecord | null;
  readonly activeAssignee: string | null;
  readonly rejections: readonly TaskRejection[];
  readonly updates: readonly TaskUpdate[];
  readonly terminalReport: TaskTerminalReport | null;
}

type Step = Result<ModeStep<TaskState>, MacpError>;

export const taskMode: ModeHandler<TaskState> = {
  policyRules: taskPolicyRules,
  onSessionStart(session) {
    // The initiator may orchestrate from outside, but someone else must do the work.
    if (!session.participants.some((participant) => participant !== session.initiator)) {
      return err(invalidEnvelope("a task session needs a participant other than the initiator"));
    }
    return ok({
      task: null,
      activeAssignee: null,
      rejections: [],
      updates: [],
      terminalReport: null,
    });
  },

  authorizeSender(ctx, _state, envelope) {
    return authorizeOrchestrated(ctx.session, envelope, "TaskRequest");
  },

  onMessage(ctx, state, envelope) {
    const { session } = ctx;
    switch (envelope.messageType) {
      case "TaskRequest":
        return onRequest(session, state, envelope);
      case "TaskAccept":
        return onAccept(session, state, envelope);
      case "TaskReject":
        return onReject(session, state, envelope);
      case "TaskUpdate":
        return onUpdate(state, envelope);
      case "TaskComplete":
        return onComplete(state, envelope);
      case "TaskFail":
        return onFail(state, envelope);
      case COMMITMENT:
        return onCommitment(session, state, envelope);
      default:
        return err(invalidEnvelope(`task mode does not accept ${envelope.messageType}`));
    }
  },

  encodeState(state): JsonValue {
    const record = state.task;
    return {
      task:
        record === null
          ? null
          : {
              task_id: record.taskId,
              title: record.title,
              instructions: record.instructions,
              requested_assignee: record.requestedAssignee,
              input: bytesJson(record.input),
              // JSON numbers are exact up to 2^53 ms, far beyond any real deadline.
              deadline_unix_ms: Number(record.deadlineUnixMs),
              requester: record.requester,
            },
      active_assignee: state.activeAssignee,
      rejections: state.rejections.map((rejection) => ({
        task_id: rejection.taskId,
        assignee: rejection.assignee,
        reason: rejection.reason,
      })),
      updates: state.updates.map((update) => ({
        task_id: update.taskId,
        status: update.status,
        progress: update.progress,
        message: update.message,
        partial_output: bytesJson(update.partialOutput),
        sender: update.sender,
      })),
      terminal_report: encodeReport(state.terminalReport),
    };
  },
};

function encodeReport(report: TaskTerminalReport | null): JsonValue {
  if (report === null) return null;
  if (report.kind === "Complete") {
    return {
      Complete: {
        task_id: report.taskId,
        assignee: report.assignee,
        output: bytesJson(report.output),
        summary: report.summary,
      },
    };
  }
  return {
    Fail: {
      task_id: report.taskId,
      assignee: report.assignee,
      error_code: report.errorCode,
      reason: report.reason,
      retryable: report.retryable,
    },
  };
}

function taskRules(session: SessionView): TaskRules {
  return rulesOrDefaults(parseTaskRules, session.policy.rules);
}

/** The payload must name the session's one task, by a non-empty id. */
function requireTask(state: TaskState, taskId: string): Result<TaskRecord, MacpError> {
  if (state.task === null) return err(invalidEnvelope("no task has been requested yet"));
  if (taskId === "" || taskId !== state.task.taskId) {
    return err(invalidEnvelope(`task_id '${taskId}' does not name the session's task`));
  }
  return ok(state.task);
}

/** A payload `assignee`, when given, must be the sender itself. */
function requireSelfAssignee(assignee: string, sender: string): Result<void, MacpError> {
  return assignee !== "" && assignee !== sender
    ? err(invalidEnvelope(`assignee '${assignee}' is not the sender`))
    : ok(undefined);
}

function isEligibleAssignee(session: SessionView, record: TaskRecord, sender: string): boolean {
  if (record.requestedAssignee !== "") return sender === record.requestedAssignee;
  return sender !== session.initiator && isDeclaredParticipant(session, sender);
}

function onRequest(session: SessionView, state: TaskState, envelope: Envelope): Step {
  return requireInitiator(session, envelope.sender, "TaskRequest")
    .andThen(() => decodePayload(task.TaskRequestPayloadSchema, envelope.payload, "TaskRequest"))
    .andThen((payload) => {
      if (state.task !== null) return err(invalidEnvelope("the session already has its task"));
      if (payload.taskId === "") return err(invalidEnvelope("task_id must not be empty"));
      if (
        payload.requestedAssignee !== "" &&
        !isDeclaredParticipant(session, payload.requestedAssignee)
      ) {
        return err(
          invalidEnvelope(`requested_assignee '${payload.requestedAssignee}' is not a participant`),
        );
      }
      const record: TaskRecord = {
        taskId: payload.taskId,
        title: payload.title,
        instructions: payload.instructions,
        requestedAssignee: payload.requestedAssignee,
        input: payload.input.slice(),
        deadlineUnixMs: payload.deadlineUnixMs,
        requester: envelope.sender,
      };
      return ok({ state: { ...state, task: record } });
    });
}

function onAccept(session: SessionView, state: TaskState, envelope: Envelope): Step {
  return decodePayload(task.TaskAcceptPayloadSchema, envelope.payload, "TaskAccept").andThen(
    (payload) =>
      requireTask(state, payload.taskId).andThen((record) => {
        if (state.activeAssignee !== null) {
          return err(invalidEnvelope(`the task is already assigned to ${state.activeAssignee}`));
        }
        // Any earlier rejection blocks every later accept unless policy allows reassignment.
        if (
          state.rejections.length > 0 &&
          !taskRules(session).assignment.allowReassignmentOnReject
        ) {
          return err(
            policyDenied("the task was rejected and policy does not allow reassignment on reject"),
          );
        }
        return requireSelfAssignee(payload.assignee, envelope.sender).andThen(() => {
          if (!isEligibleAssignee(session, record, envelope.sender)) {
            return err(forbidden(`${envelope.sender} is not an eligible assignee`));
          }
          return ok({ state: { ...state, activeAssignee: envelope.sender } });
        });
      }),
  );
}

function onReject(session: SessionView, state: TaskState, envelope: Envelope): Step {
  return decodePayload(task.TaskRejectPayloadSchema, envelope.payload, "TaskReject").andThen(
    (payload) =>
      requireTask(state, payload.taskId).andThen((record) => {
        const sender = envelope.sender;
        const active = state.activeAssignee;
        if (active !== null) {
          if (sender !== active) {
            return err(invalidEnvelope(`the task is already assigned to ${active}`));
          }
          // An accept cannot be revoked unless policy allows reassignment.
          if (!taskRules(session).assignment.allowReassignmentOnReject) {
            return err(
              policyDenied("the assignee may not reject an accepted task under this policy"),
            );
          }
        }
        return requireSelfAssignee(payload.assignee, sender).andThen(() => {
          if (active === null && !isEligibleAssignee(session, record, sender)) {
            return err(forbidden(`${sender} is not an eligible assignee`));
          }
          if (state.rejections.some((rejection) => rejection.assignee === sender)) {
            return err(invalidEnvelope(`${sender} has already rejected the task`));
          }
          const rejection: TaskRejection = {
            taskId: payload.taskId,
            assignee: sender,
            reason: payload.reason,
          };
          return ok({
            state: {
              ...state,
              // The original request stands again for someone else (RFC-0009 §5.3c).
              activeAssignee: sender === active ? null : active,
              rejections: [...state.rejections, rejection],
            },
          });
        });
      }),
  );
}

/** Progress and reports come only from the active assignee, and only before the report. */
function requireReportingAssignee(state: TaskState, sender: string): Result<void, MacpError> {
  if (state.terminalReport !== null) {
    return err(forbidden("the task has already been reported complete or failed"));
  }
  if (sender !== state.activeAssignee) {
    return err(forbidden(`${sender} is not the task's active assignee`));
  }
  return ok(undefined);
}

function onUpdate(state: TaskState, envelope: Envelope): Step {
  return decodePayload(task.TaskUpdatePayloadSchema, envelope.payload, "TaskUpdate").andThen(
    (payload) =>
      requireTask(state, payload.taskId)
        .andThen(() => requireReportingAssignee(state, envelope.sender))
        .map(() => {
          const update: TaskUpdate = {
            taskId: payload.taskId,
            status: payload.status,
            progress: payload.progress,
            message: payload.message,
            partialOutput: payload.partialOutput.slice(),
            sender: envelope.sender,
          };
          return { state: { ...state, updates: [...state.updates, update] } };
        }),
  );
}

/** TaskComplete and TaskFail: the task exists, the sender is its assignee and names itself. */
function requireTerminalReporter(
  state: TaskState,
  payload: { readonly taskId: string; readonly assignee: string },
  sender: string,
): Result<void, MacpError> {
  return requireTask(state, payload.taskId)
    .andThen(() => requireReportingAssignee(state, sender))
    .andThen(() => requireSelfAssignee(payload.assignee, sender));
}

function onComplete(state: TaskState, envelope: Envelope): Step {
  return decodePayload(task.TaskCompletePayloadSchema, envelope.payload, "TaskComplete").andThen(
    (payload) =>
      requireTerminalReporter(state, payload, envelope.sender).map(() => ({
        state: {
          ...state,
          terminalReport: {
            kind: "Complete" as const,
            taskId: payload.taskId,
            assignee: envelope.sender,
            output: payload.output.slice(),
            summary: payload.summary,
          },
        },
      })),
  );
}

function onFail(state: TaskState, envelope: Envelope): Step {
  return decodePayload(task.TaskFailPayloadSchema, envelope.payload, "TaskFail").andThen(
    (payload) =>
      requireTerminalReporter(state, payload, envelope.sender).map(() => ({
        state: {
          ...state,
          terminalReport: {
            kind: "Fail" as const,
            taskId: payload.taskId,
            assignee: envelope.sender,
            errorCode: payload.errorCode,
            reason: payload.reason,
            retryable: payload.retryable,
          },
        },
      })),
  );
}

function onCommitment(session: SessionView, state: TaskState, envelope: Envelope): Step {
  return validateCommitmentPayload(session, envelope.payload).andThen((commitment) => {
    const report = state.terminalReport;
    if (report === null) {
      return err(invalidEnvelope("the task has not been reported complete or failed yet"));
    }
    const verdict = evaluateTaskPolicy(session.policy, {
      hasOutput: report.kind === "Complete" && report.output.length > 0,
      outcomePositive: commitment.outcomePositive,
    });
    // Task keeps no committed marker: the state stays as it was.
    return verdictToResult(verdict).map(() => ({
      state,
      resolution: envelope.payload.slice(),
    }));
  });
}
