// Proposal mode: a buyer and a seller negotiate. The seller offers, the buyer
// counters, both accept the counter-offer and the buyer commits.

import { proposal } from "@macp/proto";
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

const MODE = "macp.mode.proposal.v1";

export const runProposal: Example = (options) =>
  withConnection(options, async (connection) => {
    const { log } = connection;
    await initialize(connection, "proposal-example");
    await requireMode(connection, MODE);

    const buyer = connection.agent("agent://buyer");
    const seller = connection.agent("agent://seller");
    const sessionId = newSessionId();
    const message = (sender: string, messageType: string, payload: Uint8Array) =>
      envelope({ mode: MODE, sessionId, sender, messageType, payload });

    expectAck(
      log,
      "SessionStart (buyer)",
      await buyer.send(
        message(
          buyer.id,
          "SessionStart",
          sessionStartPayload({
            intent: "Agree on the price of 500 GPU hours",
            participants: [buyer.id, seller.id],
          }),
        ),
      ),
      { ok: true, state: SessionState.OPEN },
    );

    expectAck(
      log,
      "Proposal (seller)",
      await seller.send(
        message(
          seller.id,
          "Proposal",
          encode(proposal.ProposalPayloadSchema, {
            proposalId: "offer-1",
            title: "500 GPU hours at 2.10/h",
            summary: "Delivery within 24 h",
            tags: ["compute"],
          }),
        ),
      ),
      { ok: true },
    );

    // Nothing has converged yet, so the buyer cannot bind an outcome.
    expectAck(
      log,
      "Commitment (buyer, too early)",
      await buyer.send(
        message(
          buyer.id,
          "Commitment",
          commitmentPayload({
            action: "proposal.accepted",
            outcomePositive: true,
            reason: "premature",
          }),
        ),
      ),
      { ok: false, code: "INVALID_ENVELOPE" },
    );

    expectAck(
      log,
      "CounterProposal (buyer)",
      await buyer.send(
        message(
          buyer.id,
          "CounterProposal",
          encode(proposal.CounterProposalPayloadSchema, {
            proposalId: "offer-2",
            supersedesProposalId: "offer-1",
            title: "500 GPU hours at 1.85/h",
            summary: "Delivery within 48 h is fine",
          }),
        ),
      ),
      { ok: true },
    );

    expectAck(
      log,
      "Accept (seller)",
      await seller.send(
        message(
          seller.id,
          "Accept",
          encode(proposal.AcceptPayloadSchema, { proposalId: "offer-2", reason: "works for us" }),
        ),
      ),
      { ok: true },
    );
    expectAck(
      log,
      "Accept (buyer)",
      await buyer.send(
        message(
          buyer.id,
          "Accept",
          encode(proposal.AcceptPayloadSchema, { proposalId: "offer-2", reason: "deal" }),
        ),
      ),
      { ok: true },
    );

    expectAck(
      log,
      "Commitment (buyer)",
      await buyer.send(
        message(
          buyer.id,
          "Commitment",
          commitmentPayload({
            action: "proposal.accepted",
            outcomePositive: true,
            reason: "Both parties accepted offer-2",
            authorityScope: "procurement",
          }),
        ),
      ),
      { ok: true, state: SessionState.RESOLVED },
    );

    expectSession(log, "GetSession (seller)", await seller.getSession(sessionId), {
      state: SessionState.RESOLVED,
      mode: MODE,
    });
  });
