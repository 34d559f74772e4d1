// Mode state shares its growing collections between versions (persistent lists
// and maps). These tests drive the kernel where that sharing could leak: a
// message the mode accepted but the store refused produced a newer version
// that was dropped, and the next message builds on the older one again.
import { create, toBinary } from "@bufbuild/protobuf";
import { decision } from "@macp/proto";
import { describe, expect, it } from "vitest";
import { createRuntime } from "./runtime.js";
import {
  accepted,
  envelope,
  harness,
  proposalEnvelope,
  refusal,
  sessionId,
  startEnvelope,
  voteEnvelope,
} from "./testing/fixtures.js";

const A = "agent://a";
const B = "agent://b";
const C = "agent://c";

function evaluationEnvelope(id: string, sender: string, recommendation: string, reason: string) {
  return envelope({
    sessionId: id,
    sender,
    messageType: "Evaluation",
    payload: toBinary(
      decision.EvaluationPayloadSchema,
      create(decision.EvaluationPayloadSchema, {
        proposalId: "p1",
        recommendation,
        confidence: 0.5,
        reason,
      }),
    ),
  });
}

async function openWithProposal() {
  const h = harness();
  const id = sessionId();
  await accepted(h.runtime, startEnvelope(id, A, { participants: [A, B, C] }));
  await accepted(h.runtime, proposalEnvelope(id, A));
  return { ...h, id };
}

describe("mode state after a failed append", () => {
  it("drops the refused evaluation and keeps the one accepted after it", async () => {
    const { runtime, store, id } = await openWithProposal();
    await accepted(runtime, evaluationEnvelope(id, B, "approve", "first"));
    store.failAppends("EIO");
    expect(await refusal(runtime, evaluationEnvelope(id, C, "BLOCK", "lost"))).toBe(
      "INTERNAL_ERROR",
    );
    store.failAppends(undefined);
    await accepted(runtime, evaluationEnvelope(id, B, "REVIEW", "second"));
    const state = runtime.inspectSession(id)?.modeState as {
      evaluations: { recommendation: string; reason: string }[];
    };
    expect(state.evaluations.map((e) => [e.recommendation, e.reason])).toEqual([
      ["APPROVE", "first"],
      ["REVIEW", "second"],
    ]);
  });

  it("drops the refused vote and keeps the one accepted after it", async () => {
    const { runtime, store, id } = await openWithProposal();
    await accepted(runtime, voteEnvelope(id, A, "APPROVE"));
    store.failAppends("EIO");
    expect(await refusal(runtime, voteEnvelope(id, B, "REJECT"))).toBe("INTERNAL_ERROR");
    store.failAppends(undefined);
    await accepted(runtime, voteEnvelope(id, C, "abstain"));
    // B's vote never happened, so B may still vote.
    await accepted(runtime, voteEnvelope(id, B, "APPROVE"));
    const state = runtime.inspectSession(id)?.modeState as {
      votes: Record<string, Record<string, { vote: string }>>;
    };
    expect(Object.keys(state.votes)).toEqual(["p1"]);
    expect(state.votes.p1).toEqual({
      [A]: expect.objectContaining({ vote: "APPROVE" }),
      [B]: expect.objectContaining({ vote: "APPROVE" }),
      [C]: expect.objectContaining({ vote: "ABSTAIN" }),
    });
  });

  it("drops the refused proposal, and recovery rebuilds exactly the live state", async () => {
    const { runtime, store, clock, id } = await openWithProposal();
    await accepted(runtime, evaluationEnvelope(id, B, "APPROVE", "ok"));
    store.failAppends("EIO");
    expect(await refusal(runtime, proposalEnvelope(id, A, "p2"))).toBe("INTERNAL_ERROR");
    expect(await refusal(runtime, voteEnvelope(id, B))).toBe("INTERNAL_ERROR");
    store.failAppends(undefined);
    await accepted(runtime, proposalEnvelope(id, A, "p3"));
    await accepted(runtime, voteEnvelope(id, C, "REJECT", "p3"));
    const live = runtime.inspectSession(id);
    if (live === undefined) throw new Error("the session is gone");
    expect(Object.keys((live.modeState as { proposals: object }).proposals)).toEqual(["p1", "p3"]);

    const rebuilt = createRuntime({ clock, store });
    await rebuilt.recover();
    expect(rebuilt.inspectSession(id)?.modeState).toEqual(live.modeState);
    expect(rebuilt.inspectSession(id)?.acceptedMessageIds).toEqual(live.acceptedMessageIds);
  });
});
