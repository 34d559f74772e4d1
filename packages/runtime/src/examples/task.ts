// Task mode: a planner delegates a report to a worker, which accepts, reports
// progress and completes; the planner commits the outcome.

import { task } from "@macp/proto";
import {
  commitmentPayload,
  type Example,
  encode,
  openExampleSession,
  SessionState,
  withConnection,
} from "./support.js";

export const runTask: Example = (options) =>
  withConnection(options, async (connection) => {
    const planner = connection.agent("agent://planner");
    const worker = connection.agent("agent://worker");
    // The planner orchestrates from outside: it is not itself a participant.
    const session = await openExampleSession(connection, {
      mode: "macp.mode.task.v1",
      clientName: "task-example",
      initiator: planner,
      intent: "Produce the Q4 revenue report",
      participants: [worker],
    });
    const json = (text: string) => new TextEncoder().encode(text);

    // Only the initiator may hand out the task.
    const unauthorized = encode(task.TaskRequestPayloadSchema, { taskId: "t0" });
    await session.step(worker, "TaskRequest", unauthorized, { ok: false, code: "FORBIDDEN" });

    const request = encode(task.TaskRequestPayloadSchema, {
      taskId: "q4-report",
      title: "Q4 revenue report",
      instructions: "Summarise revenue by region",
      requestedAssignee: worker.id,
      input: json('{"quarter":"Q4"}'),
    });
    await session.step(planner, "TaskRequest", request, { ok: true });

    const accept = encode(task.TaskAcceptPayloadSchema, {
      taskId: "q4-report",
      assignee: worker.id,
    });
    await session.step(worker, "TaskAccept", accept, { ok: true });

    const update = encode(task.TaskUpdatePayloadSchema, {
      taskId: "q4-report",
      status: "in_progress",
      progress: 0.5,
      message: "EMEA and APAC done",
    });
    await session.step(worker, "TaskUpdate", update, { ok: true });

    const complete = encode(task.TaskCompletePayloadSchema, {
      taskId: "q4-report",
      assignee: worker.id,
      output: json('{"emea":1.2,"apac":0.9,"amer":2.4}'),
      summary: "Report ready",
    });
    // Completion does not resolve the session; the planner's Commitment does.
    await session.step(worker, "TaskComplete", complete, { ok: true, state: SessionState.OPEN });

    const commitment = commitmentPayload({
      action: "task.completed",
      outcomePositive: true,
      reason: "Report delivered",
      authorityScope: "reporting",
    });
    await session.step(planner, "Commitment", commitment, {
      ok: true,
      state: SessionState.RESOLVED,
    });

    await session.expectState(worker, SessionState.RESOLVED);
  });
