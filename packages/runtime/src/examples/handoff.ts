// Handoff mode: an on-call agent hands an incident to a specialist. It offers
// the handoff, attaches context, the specialist accepts and the owner commits.

import { handoff } from "@macp/proto";
import {
  commitmentPayload,
  type Example,
  encode,
  openExampleSession,
  SessionState,
  withConnection,
} from "./support.js";

export const runHandoff: Example = (options) =>
  withConnection(options, async (connection) => {
    const owner = connection.agent("agent://on-call");
    const target = connection.agent("agent://db-specialist");
    // The current owner must be one of the (at least two) participants.
    const session = await openExampleSession(connection, {
      mode: "macp.mode.handoff.v1",
      clientName: "handoff-example",
      initiator: owner,
      intent: "Hand over incident INC-4711",
      participants: [owner, target],
    });

    // Nothing has been offered yet.
    const unoffered = encode(handoff.HandoffAcceptPayloadSchema, { handoffId: "h1" });
    await session.step(
      target,
      "HandoffAccept",
      unoffered,
      { ok: false, code: "INVALID_ENVELOPE" },
      "before any offer",
    );

    const offer = encode(handoff.HandoffOfferPayloadSchema, {
      handoffId: "h1",
      targetParticipant: target.id,
      scope: "incident INC-4711",
      reason: "Replication lag needs a database specialist",
    });
    await session.step(owner, "HandoffOffer", offer, { ok: true });

    const context = encode(handoff.HandoffContextPayloadSchema, {
      handoffId: "h1",
      contentType: "application/json",
      context: new TextEncoder().encode('{"lag_seconds":340,"primary":"db-1"}'),
    });
    await session.step(owner, "HandoffContext", context, { ok: true });

    const accept = encode(handoff.HandoffAcceptPayloadSchema, {
      handoffId: "h1",
      acceptedBy: target.id,
      reason: "Taking it",
    });
    await session.step(target, "HandoffAccept", accept, { ok: true });

    const commitment = commitmentPayload({
      action: "handoff.accepted",
      outcomePositive: true,
      reason: "db-specialist owns INC-4711",
      authorityScope: "incident",
    });
    await session.step(owner, "Commitment", commitment, { ok: true, state: SessionState.RESOLVED });

    await session.expectState(target, SessionState.RESOLVED);
  });
