// Task mode: a planner delegates a report to a worker, which accepts, reports
// progress and completes; the planner commits the outcome.

import { task } from "@macp/proto";
import {
  commitmentPayload,
  type Example,
  encode,
  envelope,
  expectAck,
  expectSession,
  initialize,
  newSessionId,
  requireMode,
  SessionState,
  sessionStartPayload,
  withConnection,
} from "./support.js";

const MODE = "macp.mode.task.v1";

export const runTask: Example = (options) =>
  withConnection(options, async (connection) => {
    const { log } = connection;
    await initialize(connection, "task-example");
    await requireMode(connection, MODE);

    const planner = connection.agent("agent://planner");
    const worker = connection.agent("agent://worker");
    const sessionId = newSessionId();
    const message = (sender: string, messageType: string, payload: Uint8Array) =>
      envelope({ mode: MODE, sessionId, sender, messageType, payload });

    // The planner orchestrates from outside: it is not itself a participant.
    expectAck(
      log,
      "SessionStart (planner)",
      await planner.send(
        message(
          planner.id,
          "SessionStart",
          sessionStartPayload({
            intent: "Produce the Q4 revenue report",
            participants: [worker.id],
          }),
        ),
      ),
      { ok: true, state: SessionState.OPEN },
    );

    // Only the initiator may hand out the task.
    expectAck(
      log,
      "TaskRequest (worker)",
      await worker.send(
        message(worker.id, "TaskRequest", encode(task.TaskRequestPayloadSchema, { taskId: "t0" })),
      ),
      { ok: false, code: "FORBIDDEN" },
    );

    expectAck(
      log,
      "TaskRequest (planner)",
      await planner.send(
        message(
          planner.id,
          "TaskRequest",
          encode(task.TaskRequestPayloadSchema, {
            taskId: "q4-report",
            title: "Q4 revenue report",
            instructions: "Summarise revenue by region",
            requestedAssignee: worker.id,
            input: new TextEncoder().encode('{"quarter":"Q4"}'),
          }),
        ),
      ),
      { ok: true },
    );

    expectAck(
      log,
      "TaskAccept (worker)",
      await worker.send(
        message(
          worker.id,
          "TaskAccept",
          encode(task.TaskAcceptPayloadSchema, { taskId: "q4-report", assignee: worker.id }),
        ),
      ),
      { ok: true },
    );

    expectAck(
      log,
      "TaskUpdate (worker)",
      await worker.send(
        message(
          worker.id,
          "TaskUpdate",
          encode(task.TaskUpdatePayloadSchema, {
            taskId: "q4-report",
            status: "in_progress",
            progress: 0.5,
            message: "EMEA and APAC done",
          }),
        ),
      ),
      { ok: true },
    );

    expectAck(
      log,
      "TaskComplete (worker)",
      await worker.send(
        message(
          worker.id,
          "TaskComplete",
          encode(task.TaskCompletePayloadSchema, {
            taskId: "q4-report",
            assignee: worker.id,
            output: new TextEncoder().encode('{"emea":1.2,"apac":0.9,"amer":2.4}'),
            summary: "Report ready",
          }),
        ),
      ),
      // Completion does not resolve the session; the planner's Commitment does.
      { ok: true, state: SessionState.OPEN },
    );

    expectAck(
      log,
      "Commitment (planner)",
      await planner.send(
        message(
          planner.id,
          "Commitment",
          commitmentPayload({
            action: "task.completed",
            outcomePositive: true,
            reason: "Report delivered",
            authorityScope: "reporting",
          }),
        ),
      ),
      { ok: true, state: SessionState.RESOLVED },
    );

    expectSession(log, "GetSession (worker)", await worker.getSession(sessionId), {
      state: SessionState.RESOLVED,
      mode: MODE,
    });
  });
