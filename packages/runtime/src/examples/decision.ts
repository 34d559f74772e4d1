// Decision mode: a coordinator asks two agents whether to deploy a release.
// Alice proposes, Bob evaluates, both vote, the coordinator commits. A passive
// subscriber (the coordinator) watches the whole session on a StreamSession.

import { decision } from "@macp/proto";
import {
  commitmentPayload,
  type Example,
  encode,
  expectSequence,
  openExampleSession,
  SessionState,
  subscribe,
  withConnection,
  within,
} from "./support.js";

export const runDecision: Example = (options) =>
  withConnection(options, async (connection) => {
    const coordinator = connection.agent("agent://coordinator");
    const alice = connection.agent("agent://alice");
    const bob = connection.agent("agent://bob");
    const session = await openExampleSession(connection, {
      mode: "macp.mode.decision.v1",
      clientName: "decision-example",
      initiator: coordinator,
      intent: "Decide whether to deploy release 2.0",
      participants: [alice, bob],
    });
    const vote = (value: string, reason?: string) =>
      encode(decision.VotePayloadSchema, { proposalId: "p1", vote: value, reason });

    // The initiator may watch its own session even though it is not a participant.
    const watcher = subscribe(coordinator, session.sessionId);

    const proposal = encode(decision.ProposalPayloadSchema, {
      proposalId: "p1",
      option: "deploy-v2",
      rationale: "All tests pass and the canary is healthy",
    });
    await session.step(alice, "Proposal", proposal, { ok: true, state: SessionState.OPEN });

    // The coordinator is not a declared participant, so it may commit but not propose.
    const coordinatorProposal = encode(decision.ProposalPayloadSchema, {
      proposalId: "p2",
      option: "wait",
    });
    await session.step(
      coordinator,
      "Proposal",
      coordinatorProposal,
      { ok: false, code: "FORBIDDEN" },
      "not a participant",
    );

    const evaluation = encode(decision.EvaluationPayloadSchema, {
      proposalId: "p1",
      recommendation: "APPROVE",
      confidence: 0.94,
      reason: "Error budget is intact",
    });
    await session.step(bob, "Evaluation", evaluation, { ok: true });

    const aliceVote = session.message(alice, "Vote", vote("APPROVE", "ship it"));
    await session.send(alice, aliceVote, { ok: true });
    // A retry with the same message_id is acknowledged as a duplicate, not applied twice.
    await session.send(alice, aliceVote, { ok: true, duplicate: true }, "retried");
    await session.step(bob, "Vote", vote("APPROVE", "agreed"), { ok: true });

    // Once voting has begun the evaluation phase is over.
    const lateEvaluation = encode(decision.EvaluationPayloadSchema, {
      proposalId: "p1",
      recommendation: "REVIEW",
      confidence: 0.5,
    });
    await session.step(
      bob,
      "Evaluation",
      lateEvaluation,
      { ok: false, code: "INVALID_ENVELOPE" },
      "after voting began",
    );

    const commitment = commitmentPayload({
      action: "decision.selected",
      outcomePositive: true,
      reason: "Unanimous approval of deploy-v2",
      authorityScope: "deployment",
    });
    await session.step(coordinator, "Commitment", commitment, {
      ok: true,
      state: SessionState.RESOLVED,
    });

    await session.step(
      bob,
      "Vote",
      vote("REJECT"),
      { ok: false, code: "SESSION_NOT_OPEN" },
      "after resolution",
    );

    await session.expectState(alice, SessionState.RESOLVED);

    watcher.close();
    expectSequence(
      connection.log,
      "StreamSession (coordinator)",
      await within("StreamSession", 5000, watcher.received),
      ["SessionStart", "Proposal", "Evaluation", "Vote", "Vote", "Commitment"],
    );
  });
