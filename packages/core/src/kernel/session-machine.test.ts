// The session machine applied by hand to a live session's log: what a second
// instance following a shared log would do. It must rebuild the live state and
// report the events the live path published.

import { fromBinary } from "@bufbuild/protobuf";
import {
  SessionLifecycleEvent_EventType as EventType,
  SessionStartPayloadSchema,
  SessionState,
} from "@macp/proto";
import { describe, expect, it } from "vitest";
import { ErrorCode } from "../errors.js";
import { builtInModes } from "../modes/built-in-modes.js";
import type { IncomingRecord, LogRecord, SessionBinding } from "../store/log-record.js";
import {
  accepted,
  commitmentEnvelope,
  harness,
  proposalEnvelope,
  sessionId,
  startEnvelope,
  voteEnvelope,
} from "../testing/fixtures.js";
import type { Session } from "./session.js";
import { applyRecord, evaluateStart, openSession, type SessionEvents } from "./session-machine.js";

const decision = builtInModes().find((entry) => entry.descriptor.mode === "macp.mode.decision.v1");

function follow(records: readonly LogRecord[]): { session: Session; events: SessionEvents[] } {
  const first = records[0] as IncomingRecord & { binding: SessionBinding };
  if (decision === undefined) throw new Error("the decision mode is built in");
  const start = fromBinary(SessionStartPayloadSchema, first.envelope.payload);
  const opening = evaluateStart(decision, first.envelope, start, first.binding);
  if (opening.isErr()) throw new Error(opening.error.message);
  const opened = openSession(opening.value, decision, first, 1);
  const events = [opened.events];
  for (const record of records.slice(1)) {
    const applied = applyRecord(opened.session, record);
    if (applied.isErr()) throw new Error(applied.error.message);
    events.push(applied.value);
  }
  return { session: opened.session, events };
}

describe("the session machine", () => {
  it("rebuilds a live session from its log and reports what each record caused", async () => {
    const { runtime, store, clock, as } = harness();
    const id = sessionId();
    await accepted(runtime, startEnvelope(id, "agent://a"));
    clock.advance(10);
    await accepted(runtime, proposalEnvelope(id, "agent://a"));
    await runtime.suspendSession(id, "lunch", as("agent://a"));
    clock.advance(1000);
    await runtime.resumeSession(id, "back", as("agent://a"));
    await accepted(runtime, voteEnvelope(id, "agent://b"));
    await accepted(runtime, commitmentEnvelope(id, "agent://a"));

    const { session, events } = follow((await store.read(id)) ?? []);
    const live = runtime.inspectSession(id);
    expect(session.toMetadata()).toEqual(live?.metadata);
    expect(session.handler.encodeState(session.modeState)).toEqual(live?.modeState);
    expect(session.resolution).toEqual(live?.resolution);
    expect(session.state).toBe(SessionState.RESOLVED);
    expect(
      events.map((event) => [
        event.streamed?.sequence,
        event.lifecycle,
        event.resolution !== undefined,
      ]),
    ).toEqual([
      [1, EventType.CREATED, false],
      [2, undefined, false],
      [undefined, EventType.SUSPENDED, false],
      [undefined, EventType.RESUMED, false],
      [3, undefined, false],
      [4, EventType.RESOLVED, true],
    ]);
  });

  it("refuses a record the mode no longer accepts, and leaves the session as it was", async () => {
    const { runtime, store } = harness();
    const id = sessionId();
    await accepted(runtime, startEnvelope(id, "agent://a"));
    const records = (await store.read(id)) ?? [];
    const { session } = follow(records);
    const before = session.toMetadata();
    // A vote for a proposal that was never made.
    const applied = applyRecord(session, {
      kind: "incoming",
      envelope: voteEnvelope(id, "agent://b", "APPROVE", "p-missing"),
      receivedAtMs: 0,
    });
    expect(applied.isErr() && applied.error.code).toBe(ErrorCode.INVALID_ENVELOPE);
    expect(session.toMetadata()).toEqual(before);
  });
});
