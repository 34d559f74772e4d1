// Runtimes sharing one log: each session in memory is a replica that catches
// up through the session machine when another instance wrote first. The store
// here notifies nobody of appends, so every instance finds out only through
// conflicts and refusals, the paths under test.

import { SessionState } from "@macp/proto";
import { describe, expect, it } from "vitest";
import { ErrorCode } from "../errors.js";
import { createDevIdentity } from "../identity.js";
import { createRuntime } from "../runtime.js";
import {
  accepted,
  proposalEnvelope,
  refusal,
  sessionId,
  startEnvelope,
  T0,
  voteEnvelope,
} from "../testing/fixtures.js";
import { SharedMemoryLog } from "../testing/shared-memory-log.js";
import { SimulatedClock } from "../testing/simulated-clock.js";

async function twoInstances() {
  const clock = new SimulatedClock(T0);
  const log = new SharedMemoryLog();
  const a = createRuntime({ clock, store: log });
  const b = createRuntime({ clock, store: log });
  await a.recover();
  await b.recover();
  const id = sessionId();
  await accepted(a, startEnvelope(id, "agent://a", { participants: ["agent://a", "agent://b"] }));
  return { clock, log, a, b, id };
}

describe("replicas of a shared log", () => {
  it("loads a session started on another instance from the log", async () => {
    const { b, id } = await twoInstances();
    await accepted(b, proposalEnvelope(id, "agent://a", "p1"));
    expect(b.inspectSession(id)?.acceptedCount).toBe(2);
  });

  it("catches up after losing its position and decides again on the latest state", async () => {
    const { log, a, b, id } = await twoInstances();
    await accepted(b, proposalEnvelope(id, "agent://a", "p1"));
    // A's replica still ends at the SessionStart: its append conflicts, it applies p1, then p2 goes after it.
    await accepted(a, proposalEnvelope(id, "agent://a", "p2"));
    const snapshot = a.inspectSession(id)!;
    expect(snapshot.acceptedCount).toBe(3);
    expect(Object.keys((snapshot.modeState as { proposals: object }).proposals)).toEqual([
      "p1",
      "p2",
    ]);
    expect(log.logs.get(id)?.length).toBe(3);
  });

  it("re-checks a refusal against the log: a vote on a proposal made elsewhere is accepted", async () => {
    const { a, b, id } = await twoInstances();
    expect(b.inspectSession(id)).toBeUndefined();
    (await b.getSession(id, createDevIdentity("agent://a")))._unsafeUnwrap();
    await accepted(a, proposalEnvelope(id, "agent://a", "p1"));
    await accepted(b, voteEnvelope(id, "agent://b", "APPROVE", "p1"));
    expect(b.inspectSession(id)?.acceptedCount).toBe(3);
  });

  it("still refuses what the log's latest state refuses", async () => {
    const { a, b, id } = await twoInstances();
    await accepted(b, proposalEnvelope(id, "agent://a", "p1"));
    (await a.cancelSession(id, "done", createDevIdentity("agent://a")))._unsafeUnwrap();
    expect(await refusal(b, proposalEnvelope(id, "agent://a", "p2"))).toBe(
      ErrorCode.SESSION_NOT_OPEN,
    );
    expect(b.inspectSession(id)?.metadata.state).toBe(SessionState.CANCELLED);
  });

  it("expires a session exactly once when both instances see the deadline pass", async () => {
    const { clock, log, a, b, id } = await twoInstances();
    await accepted(b, proposalEnvelope(id, "agent://a", "p1"));
    clock.advance(60_001);
    await Promise.all([a.processDueWork(), b.processDueWork()]);
    const expiries = (log.logs.get(id) ?? []).filter(
      (record) => record.kind === "internal" && record.type === "TtlExpired",
    );
    expect(expiries).toHaveLength(1);
    for (const runtime of [a, b]) {
      expect(runtime.inspectSession(id)?.metadata.state).toBe(SessionState.EXPIRED);
    }
  });
});
