// Quorum mode: a release manager needs two of three approvers before a
// production change goes out.

import { quorum } from "@macp/proto";
import {
  commitmentPayload,
  type Example,
  encode,
  openExampleSession,
  SessionState,
  withConnection,
} from "./support.js";

export const runQuorum: Example = (options) =>
  withConnection(options, async (connection) => {
    const manager = connection.agent("agent://release-manager");
    const alice = connection.agent("agent://alice");
    const bob = connection.agent("agent://bob");
    const carol = connection.agent("agent://carol");
    const session = await openExampleSession(connection, {
      mode: "macp.mode.quorum.v1",
      clientName: "quorum-example",
      initiator: manager,
      intent: "Approve the production schema migration",
      participants: [alice, bob, carol],
    });
    const approve = (reason?: string) =>
      encode(quorum.ApprovePayloadSchema, { requestId: "r1", reason });

    const request = encode(quorum.ApprovalRequestPayloadSchema, {
      requestId: "r1",
      action: "migrate-orders-table",
      summary: "Add an index on orders.customer_id",
      requiredApprovals: 2,
    });
    await session.step(manager, "ApprovalRequest", request, { ok: true });

    await session.step(alice, "Approve", approve("lgtm"), { ok: true });

    // One approval of two, with two voters left: the quorum is still open.
    const premature = commitmentPayload({
      action: "quorum.approved",
      outcomePositive: true,
      reason: "premature",
    });
    await session.step(
      manager,
      "Commitment",
      premature,
      { ok: false, code: "INVALID_ENVELOPE" },
      "too early",
    );

    await session.step(bob, "Approve", approve("tested on staging"), { ok: true });
    const onLeave = encode(quorum.AbstainPayloadSchema, { requestId: "r1", reason: "on leave" });
    await session.step(carol, "Abstain", onLeave, { ok: true });
    // One ballot per voter.
    await session.step(
      carol,
      "Approve",
      approve(),
      { ok: false, code: "INVALID_ENVELOPE" },
      "second ballot",
    );

    const commitment = commitmentPayload({
      action: "quorum.approved",
      outcomePositive: true,
      reason: "2 of 3 approved",
      authorityScope: "change-management",
    });
    await session.step(manager, "Commitment", commitment, {
      ok: true,
      state: SessionState.RESOLVED,
    });

    await session.expectState(carol, SessionState.RESOLVED);
  });
