// Decision mode: a coordinator asks two agents whether to deploy a release.
// Alice proposes, Bob evaluates, both vote, the coordinator commits. A passive
// subscriber (the coordinator) watches the whole session on a StreamSession.

import { decision } from "@macp/proto";
import {
  commitmentPayload,
  type Example,
  encode,
  envelope,
  expectAck,
  expectSequence,
  expectSession,
  initialize,
  newSessionId,
  requireMode,
  SessionState,
  sessionStartPayload,
  subscribe,
  withConnection,
  within,
} from "./support.js";

const MODE = "macp.mode.decision.v1";

export const runDecision: Example = (options) =>
  withConnection(options, async (connection) => {
    const { log } = connection;
    await initialize(connection, "decision-example");
    await requireMode(connection, MODE);

    const coordinator = connection.agent("agent://coordinator");
    const alice = connection.agent("agent://alice");
    const bob = connection.agent("agent://bob");
    const sessionId = newSessionId();
    const message = (
      sender: string,
      messageType: string,
      payload: Uint8Array,
      messageId?: string,
    ) => envelope({ mode: MODE, sessionId, sender, messageType, payload, messageId });

    expectAck(
      log,
      "SessionStart",
      await coordinator.send(
        message(
          coordinator.id,
          "SessionStart",
          sessionStartPayload({
            intent: "Decide whether to deploy release 2.0",
            participants: [alice.id, bob.id],
          }),
        ),
      ),
      { ok: true, state: SessionState.OPEN },
    );

    // The initiator may watch its own session even though it is not a participant.
    const watcher = subscribe(coordinator, sessionId);

    expectAck(
      log,
      "Proposal (alice)",
      await alice.send(
        message(
          alice.id,
          "Proposal",
          encode(decision.ProposalPayloadSchema, {
            proposalId: "p1",
            option: "deploy-v2",
            rationale: "All tests pass and the canary is healthy",
          }),
        ),
      ),
      { ok: true, state: SessionState.OPEN },
    );

    // The coordinator is not a declared participant, so it may commit but not propose.
    expectAck(
      log,
      "Proposal (coordinator, not a participant)",
      await coordinator.send(
        message(
          coordinator.id,
          "Proposal",
          encode(decision.ProposalPayloadSchema, { proposalId: "p2", option: "wait" }),
        ),
      ),
      { ok: false, code: "FORBIDDEN" },
    );

    expectAck(
      log,
      "Evaluation (bob)",
      await bob.send(
        message(
          bob.id,
          "Evaluation",
          encode(decision.EvaluationPayloadSchema, {
            proposalId: "p1",
            recommendation: "APPROVE",
            confidence: 0.94,
            reason: "Error budget is intact",
          }),
        ),
      ),
      { ok: true },
    );

    const aliceVote = message(
      alice.id,
      "Vote",
      encode(decision.VotePayloadSchema, { proposalId: "p1", vote: "APPROVE", reason: "ship it" }),
    );
    expectAck(log, "Vote (alice)", await alice.send(aliceVote), { ok: true });
    // A retry with the same message_id is acknowledged as a duplicate, not applied twice.
    expectAck(log, "Vote (alice, retried)", await alice.send(aliceVote), {
      ok: true,
      duplicate: true,
    });
    expectAck(
      log,
      "Vote (bob)",
      await bob.send(
        message(
          bob.id,
          "Vote",
          encode(decision.VotePayloadSchema, {
            proposalId: "p1",
            vote: "APPROVE",
            reason: "agreed",
          }),
        ),
      ),
      { ok: true },
    );

    // Once voting has begun the evaluation phase is over.
    expectAck(
      log,
      "Evaluation (bob, after voting began)",
      await bob.send(
        message(
          bob.id,
          "Evaluation",
          encode(decision.EvaluationPayloadSchema, {
            proposalId: "p1",
            recommendation: "REVIEW",
            confidence: 0.5,
          }),
        ),
      ),
      { ok: false, code: "INVALID_ENVELOPE" },
    );

    expectAck(
      log,
      "Commitment (coordinator)",
      await coordinator.send(
        message(
          coordinator.id,
          "Commitment",
          commitmentPayload({
            action: "decision.selected",
            outcomePositive: true,
            reason: "Unanimous approval of deploy-v2",
            authorityScope: "deployment",
          }),
        ),
      ),
      { ok: true, state: SessionState.RESOLVED },
    );

    expectAck(
      log,
      "Vote (bob, after resolution)",
      await bob.send(
        message(
          bob.id,
          "Vote",
          encode(decision.VotePayloadSchema, { proposalId: "p1", vote: "REJECT" }),
        ),
      ),
      { ok: false, code: "SESSION_NOT_OPEN" },
    );

    expectSession(log, "GetSession (alice)", await alice.getSession(sessionId), {
      state: SessionState.RESOLVED,
      mode: MODE,
    });

    watcher.close();
    expectSequence(
      log,
      "StreamSession (coordinator)",
      await within("StreamSession", 5000, watcher.received),
      ["SessionStart", "Proposal", "Evaluation", "Vote", "Vote", "Commitment"],
    );
  });
