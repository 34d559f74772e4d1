// Proposal mode: a buyer and a seller negotiate. The seller offers, the buyer
// counters, both accept the counter-offer and the buyer commits.

import { proposal } from "@macp/proto";
import {
  commitmentPayload,
  type Example,
  encode,
  openExampleSession,
  SessionState,
  withConnection,
} from "./support.js";

export const runProposal: Example = (options) =>
  withConnection(options, async (connection) => {
    const buyer = connection.agent("agent://buyer");
    const seller = connection.agent("agent://seller");
    const session = await openExampleSession(connection, {
      mode: "macp.mode.proposal.v1",
      clientName: "proposal-example",
      initiator: buyer,
      intent: "Agree on the price of 500 GPU hours",
      participants: [buyer, seller],
    });
    const accept = (reason: string) =>
      encode(proposal.AcceptPayloadSchema, { proposalId: "offer-2", reason });

    const offer = encode(proposal.ProposalPayloadSchema, {
      proposalId: "offer-1",
      title: "500 GPU hours at 2.10/h",
      summary: "Delivery within 24 h",
      tags: ["compute"],
    });
    await session.step(seller, "Proposal", offer, { ok: true });

    // Nothing has converged yet, so the buyer cannot bind an outcome.
    const premature = commitmentPayload({
      action: "proposal.accepted",
      outcomePositive: true,
      reason: "premature",
    });
    await session.step(
      buyer,
      "Commitment",
      premature,
      { ok: false, code: "INVALID_ENVELOPE" },
      "too early",
    );

    const counterOffer = encode(proposal.CounterProposalPayloadSchema, {
      proposalId: "offer-2",
      supersedesProposalId: "offer-1",
      title: "500 GPU hours at 1.85/h",
      summary: "Delivery within 48 h is fine",
    });
    await session.step(buyer, "CounterProposal", counterOffer, { ok: true });

    await session.step(seller, "Accept", accept("works for us"), { ok: true });
    await session.step(buyer, "Accept", accept("deal"), { ok: true });

    const commitment = commitmentPayload({
      action: "proposal.accepted",
      outcomePositive: true,
      reason: "Both parties accepted offer-2",
      authorityScope: "procurement",
    });
    await session.step(buyer, "Commitment", commitment, { ok: true, state: SessionState.RESOLVED });

    await session.expectState(seller, SessionState.RESOLVED);
  });
