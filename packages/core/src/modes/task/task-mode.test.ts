import { task } from "@macp/proto";
import { describe, expect, it } from "vitest";
import {
  commitment,
  encode,
  ModeDriver,
  outcome,
  session,
  startPayload,
  withPolicy,
} from "../mode-test-support.js";
import { type TaskState, taskMode } from "./task-mode.js";

const PLANNER = "agent://planner";
const WORKER = "agent://worker";
const HELPER = "agent://helper";
const view = session({
  mode: "macp.mode.task.v1",
  initiator: PLANNER,
  participants: [PLANNER, WORKER, HELPER],
});
const reassignable = withPolicy(view, { assignment: { allow_reassignment_on_reject: true } });

const request = (taskId: string, requestedAssignee = "") =>
  encode(task.TaskRequestPayloadSchema, {
    taskId,
    title: "Build",
    instructions: "Do it",
    requestedAssignee,
  });
const acceptTask = (taskId = "t1", assignee = "") =>
  encode(task.TaskAcceptPayloadSchema, { taskId, assignee });
const rejectTask = (taskId = "t1", assignee = "") =>
  encode(task.TaskRejectPayloadSchema, { taskId, assignee, reason: "busy" });
const update = (taskId = "t1") =>
  encode(task.TaskUpdatePayloadSchema, { taskId, status: "working", progress: 0.5, message: "m" });
const complete = (output = new Uint8Array(0), assignee = "") =>
  encode(task.TaskCompletePayloadSchema, { taskId: "t1", assignee, output, summary: "done" });
const fail = () =>
  encode(task.TaskFailPayloadSchema, {
    taskId: "t1",
    errorCode: "BUILD_FAILED",
    reason: "broken",
    retryable: false,
  });

function driver(sessionView = view): ModeDriver<TaskState> {
  return new ModeDriver(taskMode, sessionView);
}

/** A driver with t1 requested (open assignment unless named) and, optionally, accepted. */
function assigned(sessionView = view, assignee = WORKER): ModeDriver<TaskState> {
  const d = driver(sessionView);
  d.send("TaskRequest", PLANNER, request("t1"));
  d.send("TaskAccept", assignee, acceptTask());
  return d;
}

describe("task mode: SessionStart", () => {
  it("rejects a session whose only participant is the initiator", () => {
    const solo = session({
      mode: "macp.mode.task.v1",
      initiator: PLANNER,
      participants: [PLANNER],
    });
    expect(outcome(taskMode.onSessionStart(solo, startPayload(solo)))).toBe("INVALID_ENVELOPE");
  });

  it("accepts an external orchestrator that is not a participant", () => {
    const external = session({
      mode: "macp.mode.task.v1",
      initiator: PLANNER,
      participants: [WORKER],
    });
    const d = driver(external);
    expect(d.text()).toBe(
      '{"task":null,"active_assignee":null,"rejections":[],"updates":[],"terminal_report":null}',
    );
    expect(outcome(d.send("TaskRequest", PLANNER, request("t1")))).toBe("ok");
    expect(outcome(d.send("TaskAccept", WORKER, acceptTask()))).toBe("ok");
    expect(outcome(d.send("TaskComplete", WORKER, complete()))).toBe("ok");
    expect(
      outcome(d.send("Commitment", PLANNER, commitment(external, { action: "task.completed" }))),
    ).toBe("ok");
  });
});

describe("task mode: TaskRequest", () => {
  it("task_reject_paths: only the initiator requests, and only once", () => {
    const d = driver();
    expect(outcome(d.send("TaskRequest", WORKER, request("t1", WORKER)))).toBe("FORBIDDEN");
    expect(outcome(d.send("TaskRequest", PLANNER, request("t1", WORKER)))).toBe("ok");
    expect(outcome(d.send("TaskRequest", PLANNER, request("t2", WORKER)))).toBe("INVALID_ENVELOPE");
    expect(d.state.task?.taskId).toBe("t1");
  });

  it("rejects an empty task_id and a requested assignee who is not a participant", () => {
    const d = driver();
    expect(outcome(d.send("TaskRequest", PLANNER, request("")))).toBe("INVALID_ENVELOPE");
    expect(outcome(d.send("TaskRequest", PLANNER, request("t1", "agent://stranger")))).toBe(
      "INVALID_ENVELOPE",
    );
  });

  it("allows naming the initiator as assignee when it is a participant", () => {
    const d = driver();
    expect(outcome(d.send("TaskRequest", PLANNER, request("t1", PLANNER)))).toBe("ok");
    expect(outcome(d.send("TaskAccept", PLANNER, acceptTask()))).toBe("ok");
  });
});

describe("task mode: TaskAccept", () => {
  it("rejects an accept without a task, or for another or an empty task id", () => {
    const d = driver();
    expect(outcome(d.send("TaskAccept", WORKER, acceptTask()))).toBe("INVALID_ENVELOPE");
    d.send("TaskRequest", PLANNER, request("t1"));
    expect(outcome(d.send("TaskAccept", WORKER, acceptTask("t2")))).toBe("INVALID_ENVELOPE");
    expect(outcome(d.send("TaskAccept", WORKER, acceptTask("")))).toBe("INVALID_ENVELOPE");
  });

  it("lets the first accept win; a competing second accept is INVALID_ENVELOPE", () => {
    const d = assigned();
    expect(outcome(d.send("TaskAccept", HELPER, acceptTask()))).toBe("INVALID_ENVELOPE");
    expect(d.state.activeAssignee).toBe(WORKER);
  });

  it("rejects a payload assignee other than the sender", () => {
    const d = driver();
    d.send("TaskRequest", PLANNER, request("t1"));
    expect(outcome(d.send("TaskAccept", WORKER, acceptTask("t1", HELPER)))).toBe(
      "INVALID_ENVELOPE",
    );
    expect(outcome(d.send("TaskAccept", WORKER, acceptTask("t1", WORKER)))).toBe("ok");
  });

  it("refuses senders who are not eligible assignees", () => {
    const named = driver();
    named.send("TaskRequest", PLANNER, request("t1", WORKER));
    expect(outcome(named.send("TaskAccept", HELPER, acceptTask()))).toBe("FORBIDDEN");
    const open = driver();
    open.send("TaskRequest", PLANNER, request("t1"));
    // Open assignment excludes the initiator.
    expect(outcome(open.send("TaskAccept", PLANNER, acceptTask()))).toBe("FORBIDDEN");
    expect(outcome(open.send("TaskAccept", "agent://outsider", acceptTask()))).toBe("FORBIDDEN");
  });

  it("any earlier reject blocks every later accept unless policy allows reassignment", () => {
    const d = driver();
    d.send("TaskRequest", PLANNER, request("t1"));
    expect(outcome(d.send("TaskReject", HELPER, rejectTask()))).toBe("ok");
    const denied = d.send("TaskAccept", WORKER, acceptTask());
    expect(outcome(denied)).toBe("POLICY_DENIED");
    expect(denied._unsafeUnwrapErr().reasons).toHaveLength(1);

    const e = driver(reassignable);
    e.send("TaskRequest", PLANNER, request("t1"));
    e.send("TaskReject", HELPER, rejectTask());
    expect(outcome(e.send("TaskAccept", WORKER, acceptTask()))).toBe("ok");
  });
});

describe("task mode: TaskReject", () => {
  it("by the active assignee is POLICY_DENIED without the reassignment policy", () => {
    expect(outcome(assigned().send("TaskReject", WORKER, rejectTask()))).toBe("POLICY_DENIED");
  });

  it("by the active assignee clears the assignment under the reassignment policy", () => {
    const d = assigned(reassignable);
    expect(outcome(d.send("TaskReject", WORKER, rejectTask()))).toBe("ok");
    expect(d.json()).toMatchObject({
      active_assignee: null,
      rejections: [{ task_id: "t1", assignee: WORKER, reason: "busy" }],
    });
    expect(outcome(d.send("TaskAccept", HELPER, acceptTask()))).toBe("ok");
  });

  it("by someone else while the task is assigned is INVALID_ENVELOPE", () => {
    expect(outcome(assigned().send("TaskReject", HELPER, rejectTask()))).toBe("INVALID_ENVELOPE");
  });

  it("rejects a repeat reject by the same sender", () => {
    const d = driver();
    d.send("TaskRequest", PLANNER, request("t1"));
    expect(outcome(d.send("TaskReject", HELPER, rejectTask()))).toBe("ok");
    expect(outcome(d.send("TaskReject", HELPER, rejectTask()))).toBe("INVALID_ENVELOPE");
  });

  it("checks the task, the payload assignee and eligibility", () => {
    const d = driver();
    expect(outcome(d.send("TaskReject", HELPER, rejectTask()))).toBe("INVALID_ENVELOPE");
    d.send("TaskRequest", PLANNER, request("t1", WORKER));
    expect(outcome(d.send("TaskReject", WORKER, rejectTask("t9")))).toBe("INVALID_ENVELOPE");
    expect(outcome(d.send("TaskReject", WORKER, rejectTask("t1", HELPER)))).toBe(
      "INVALID_ENVELOPE",
    );
    expect(outcome(d.send("TaskReject", HELPER, rejectTask()))).toBe("FORBIDDEN");
    expect(outcome(d.send("TaskReject", WORKER, rejectTask("t1", WORKER)))).toBe("ok");
  });
});

describe("task mode: TaskUpdate, TaskComplete, TaskFail", () => {
  it("refuses an update from a non-assignee with FORBIDDEN", () => {
    const d = assigned();
    expect(outcome(d.send("TaskUpdate", HELPER, update()))).toBe("FORBIDDEN");
    expect(outcome(d.send("TaskUpdate", WORKER, update("t2")))).toBe("INVALID_ENVELOPE");
    expect(outcome(d.send("TaskUpdate", WORKER, update()))).toBe("ok");
    expect(d.json()).toMatchObject({
      updates: [
        {
          task_id: "t1",
          status: "working",
          progress: 0.5,
          message: "m",
          partial_output: [],
          sender: WORKER,
        },
      ],
    });
  });

  it("allows one terminal report, from the active assignee only", () => {
    const d = assigned();
    expect(outcome(d.send("TaskComplete", HELPER, complete()))).toBe("FORBIDDEN");
    expect(outcome(d.send("TaskComplete", WORKER, complete(new Uint8Array(), HELPER)))).toBe(
      "INVALID_ENVELOPE",
    );
    expect(outcome(d.send("TaskComplete", WORKER, complete(new Uint8Array([1]))))).toBe("ok");
    expect(outcome(d.send("TaskFail", WORKER, fail()))).toBe("FORBIDDEN");
    expect(outcome(d.send("TaskUpdate", WORKER, update()))).toBe("FORBIDDEN");
  });

  it("refuses reports before anyone accepted", () => {
    const d = driver();
    d.send("TaskRequest", PLANNER, request("t1"));
    expect(outcome(d.send("TaskFail", WORKER, fail()))).toBe("FORBIDDEN");
  });

  it("rejects unknown message types from participants", () => {
    expect(outcome(driver().send("TaskPing", WORKER, new Uint8Array()))).toBe("INVALID_ENVELOPE");
  });
});

describe("task mode: Commitment", () => {
  it("is not ready without a terminal report", () => {
    const d = assigned();
    const commit = commitment(view, { action: "task.completed" });
    expect(outcome(d.send("Commitment", PLANNER, commit))).toBe("INVALID_ENVELOPE");
    expect(outcome(d.send("Commitment", WORKER, commit))).toBe("FORBIDDEN");
  });

  it("task_happy_path: resolves with the payload and keeps the documented state", () => {
    const d = driver();
    expect(outcome(d.send("TaskRequest", PLANNER, request("t1", WORKER)))).toBe("ok");
    expect(outcome(d.send("TaskAccept", WORKER, acceptTask()))).toBe("ok");
    expect(outcome(d.send("TaskComplete", WORKER, complete()))).toBe("ok");
    const before = d.state;
    const commit = commitment(view, { action: "task.completed", outcomePositive: true });
    expect(outcome(d.send("Commitment", PLANNER, commit))).toBe("ok");
    expect(d.resolution).toEqual(commit);
    expect(d.state).toBe(before);
    expect(d.text()).toBe(
      '{"task":{"task_id":"t1","title":"Build","instructions":"Do it","requested_assignee":"agent://worker","input":[],"deadline_unix_ms":0,"requester":"agent://planner"},"active_assignee":"agent://worker","rejections":[],"updates":[],"terminal_report":{"Complete":{"task_id":"t1","assignee":"agent://worker","output":[],"summary":"done"}}}',
    );
  });

  it("task_negative_outcome: a failure is committed as task.failed", () => {
    const d = assigned();
    expect(outcome(d.send("TaskFail", WORKER, fail()))).toBe("ok");
    expect(d.json()).toMatchObject({
      terminal_report: {
        Fail: {
          task_id: "t1",
          assignee: WORKER,
          error_code: "BUILD_FAILED",
          reason: "broken",
          retryable: false,
        },
      },
    });
    const decline = commitment(view, { action: "task.failed", outcomePositive: false });
    expect(outcome(d.send("Commitment", PLANNER, decline))).toBe("ok");
  });

  it("completion.require_output denies a positive outcome without output only", () => {
    const strict = withPolicy(view, { completion: { require_output: true } });
    const empty = assigned(strict);
    empty.send("TaskComplete", WORKER, complete());
    const positive = commitment(strict, { action: "task.completed", outcomePositive: true });
    expect(outcome(empty.send("Commitment", PLANNER, positive))).toBe("POLICY_DENIED");
    const negative = commitment(strict, { action: "task.failed", outcomePositive: false });
    expect(outcome(empty.send("Commitment", PLANNER, negative))).toBe("ok");

    const withOutput = assigned(strict);
    withOutput.send("TaskComplete", WORKER, complete(new Uint8Array([42])));
    expect(outcome(withOutput.send("Commitment", PLANNER, positive))).toBe("ok");
  });
});
