// Handoff mode: an on-call agent hands an incident to a specialist. It offers
// the handoff, attaches context, the specialist accepts and the owner commits.

import { handoff } from "@macp/proto";
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

const MODE = "macp.mode.handoff.v1";

export const runHandoff: Example = (options) =>
  withConnection(options, async (connection) => {
    const { log } = connection;
    await initialize(connection, "handoff-example");
    await requireMode(connection, MODE);

    const owner = connection.agent("agent://on-call");
    const target = connection.agent("agent://db-specialist");
    const sessionId = newSessionId();
    const message = (sender: string, messageType: string, payload: Uint8Array) =>
      envelope({ mode: MODE, sessionId, sender, messageType, payload });

    // The current owner must be one of the (at least two) participants.
    expectAck(
      log,
      "SessionStart (on-call)",
      await owner.send(
        message(
          owner.id,
          "SessionStart",
          sessionStartPayload({
            intent: "Hand over incident INC-4711",
            participants: [owner.id, target.id],
          }),
        ),
      ),
      { ok: true, state: SessionState.OPEN },
    );

    // Nothing has been offered yet.
    expectAck(
      log,
      "HandoffAccept (before any offer)",
      await target.send(
        message(
          target.id,
          "HandoffAccept",
          encode(handoff.HandoffAcceptPayloadSchema, { handoffId: "h1" }),
        ),
      ),
      { ok: false, code: "INVALID_ENVELOPE" },
    );

    expectAck(
      log,
      "HandoffOffer (on-call)",
      await owner.send(
        message(
          owner.id,
          "HandoffOffer",
          encode(handoff.HandoffOfferPayloadSchema, {
            handoffId: "h1",
            targetParticipant: target.id,
            scope: "incident INC-4711",
            reason: "Replication lag needs a database specialist",
          }),
        ),
      ),
      { ok: true },
    );

    expectAck(
      log,
      "HandoffContext (on-call)",
      await owner.send(
        message(
          owner.id,
          "HandoffContext",
          encode(handoff.HandoffContextPayloadSchema, {
            handoffId: "h1",
            contentType: "application/json",
            context: new TextEncoder().encode('{"lag_seconds":340,"primary":"db-1"}'),
          }),
        ),
      ),
      { ok: true },
    );

    expectAck(
      log,
      "HandoffAccept (db-specialist)",
      await target.send(
        message(
          target.id,
          "HandoffAccept",
          encode(handoff.HandoffAcceptPayloadSchema, {
            handoffId: "h1",
            acceptedBy: target.id,
            reason: "Taking it",
          }),
        ),
      ),
      { ok: true },
    );

    expectAck(
      log,
      "Commitment (on-call)",
      await owner.send(
        message(
          owner.id,
          "Commitment",
          commitmentPayload({
            action: "handoff.accepted",
            outcomePositive: true,
            reason: "db-specialist owns INC-4711",
            authorityScope: "incident",
          }),
        ),
      ),
      { ok: true, state: SessionState.RESOLVED },
    );

    expectSession(log, "GetSession (db-specialist)", await target.getSession(sessionId), {
      state: SessionState.RESOLVED,
      mode: MODE,
    });
  });
