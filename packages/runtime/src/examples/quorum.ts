// Quorum mode: a release manager needs two of three approvers before a
// production change goes out.

import { quorum } from "@macp/proto";
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

const MODE = "macp.mode.quorum.v1";

export const runQuorum: Example = (options) =>
  withConnection(options, async (connection) => {
    const { log } = connection;
    await initialize(connection, "quorum-example");
    await requireMode(connection, MODE);

    const manager = connection.agent("agent://release-manager");
    const alice = connection.agent("agent://alice");
    const bob = connection.agent("agent://bob");
    const carol = connection.agent("agent://carol");
    const sessionId = newSessionId();
    const message = (sender: string, messageType: string, payload: Uint8Array) =>
      envelope({ mode: MODE, sessionId, sender, messageType, payload });

    expectAck(
      log,
      "SessionStart (release-manager)",
      await manager.send(
        message(
          manager.id,
          "SessionStart",
          sessionStartPayload({
            intent: "Approve the production schema migration",
            participants: [alice.id, bob.id, carol.id],
          }),
        ),
      ),
      { ok: true, state: SessionState.OPEN },
    );

    expectAck(
      log,
      "ApprovalRequest (release-manager)",
      await manager.send(
        message(
          manager.id,
          "ApprovalRequest",
          encode(quorum.ApprovalRequestPayloadSchema, {
            requestId: "r1",
            action: "migrate-orders-table",
            summary: "Add an index on orders.customer_id",
            requiredApprovals: 2,
          }),
        ),
      ),
      { ok: true },
    );

    expectAck(
      log,
      "Approve (alice)",
      await alice.send(
        message(
          alice.id,
          "Approve",
          encode(quorum.ApprovePayloadSchema, { requestId: "r1", reason: "lgtm" }),
        ),
      ),
      { ok: true },
    );

    // One approval of two, with two voters left: the quorum is still open.
    expectAck(
      log,
      "Commitment (release-manager, too early)",
      await manager.send(
        message(
          manager.id,
          "Commitment",
          commitmentPayload({
            action: "quorum.approved",
            outcomePositive: true,
            reason: "premature",
          }),
        ),
      ),
      { ok: false, code: "INVALID_ENVELOPE" },
    );

    expectAck(
      log,
      "Approve (bob)",
      await bob.send(
        message(
          bob.id,
          "Approve",
          encode(quorum.ApprovePayloadSchema, { requestId: "r1", reason: "tested on staging" }),
        ),
      ),
      { ok: true },
    );
    expectAck(
      log,
      "Abstain (carol)",
      await carol.send(
        message(
          carol.id,
          "Abstain",
          encode(quorum.AbstainPayloadSchema, { requestId: "r1", reason: "on leave" }),
        ),
      ),
      { ok: true },
    );
    // One ballot per voter.
    expectAck(
      log,
      "Approve (carol, second ballot)",
      await carol.send(
        message(carol.id, "Approve", encode(quorum.ApprovePayloadSchema, { requestId: "r1" })),
      ),
      { ok: false, code: "INVALID_ENVELOPE" },
    );

    expectAck(
      log,
      "Commitment (release-manager)",
      await manager.send(
        message(
          manager.id,
          "Commitment",
          commitmentPayload({
            action: "quorum.approved",
            outcomePositive: true,
            reason: "2 of 3 approved",
            authorityScope: "change-management",
          }),
        ),
      ),
      { ok: true, state: SessionState.RESOLVED },
    );

    expectSession(log, "GetSession (carol)", await carol.getSession(sessionId), {
      state: SessionState.RESOLVED,
      mode: MODE,
    });
  });
