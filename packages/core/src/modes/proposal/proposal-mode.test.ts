import { proposal } from "@macp/proto";
import { describe, expect, it } from "vitest";
import {
  commitment,
  encode,
  ModeDriver,
  outcome,
  session,
  startPayload,
  withPolicy,
} from "../mode-test-support.js";
import { type ProposalState, proposalMode } from "./proposal-mode.js";

const SELLER = "agent://seller";
const BUYER = "agent://buyer";
const view = session({
  mode: "macp.mode.proposal.v1",
  initiator: BUYER,
  participants: [SELLER, BUYER],
});

const offer = (proposalId: string, title = "offer", summary = "terms") =>
  encode(proposal.ProposalPayloadSchema, { proposalId, title, summary });
const counter = (proposalId: string, supersedesProposalId: string) =>
  encode(proposal.CounterProposalPayloadSchema, {
    proposalId,
    supersedesProposalId,
    title: "counter",
    summary: "better",
    details: new Uint8Array([9]),
  });
const accept = (proposalId: string) => encode(proposal.AcceptPayloadSchema, { proposalId });
const reject = (proposalId: string, terminal = false) =>
  encode(proposal.RejectPayloadSchema, { proposalId, terminal, reason: "no" });
const withdraw = (proposalId: string) => encode(proposal.WithdrawPayloadSchema, { proposalId });

function driver(sessionView = view): ModeDriver<ProposalState> {
  return new ModeDriver(proposalMode, sessionView);
}

const phaseOf = (d: ModeDriver<ProposalState>) => d.state.phase;

describe("proposal mode: SessionStart and authorization", () => {
  it("rejects a session without participants", () => {
    const empty = session({ participants: [] });
    expect(outcome(proposalMode.onSessionStart(empty, startPayload(empty)))).toBe(
      "INVALID_ENVELOPE",
    );
  });

  it("starts with the empty state of modes.md §3.3", () => {
    expect(driver().text()).toBe(
      '{"proposals":{},"accepts":{},"terminal_rejections":[],"rejections":[],"phase":"Negotiating"}',
    );
  });

  it("refuses non-participants and rejects unknown types from participants", () => {
    const d = driver();
    expect(outcome(d.send("Proposal", "agent://outsider", offer("p1")))).toBe("FORBIDDEN");
    expect(outcome(d.send("Haggle", "agent://outsider", offer("p1")))).toBe("FORBIDDEN");
    expect(outcome(d.send("Haggle", SELLER, offer("p1")))).toBe("INVALID_ENVELOPE");
  });
});

describe("proposal mode: Proposal and CounterProposal", () => {
  it("rejects a blank or reused proposal id, withdrawn ids included", () => {
    const d = driver();
    expect(outcome(d.send("Proposal", SELLER, offer(" ")))).toBe("INVALID_ENVELOPE");
    expect(outcome(d.send("Proposal", SELLER, offer("p1")))).toBe("ok");
    expect(outcome(d.send("Proposal", BUYER, offer("p1")))).toBe("INVALID_ENVELOPE");
    d.send("Withdraw", SELLER, withdraw("p1"));
    expect(outcome(d.send("Proposal", SELLER, offer("p1")))).toBe("INVALID_ENVELOPE");
  });

  it("rejects a counter-proposal with a blank id, a blank or unknown supersedes, or a used id", () => {
    const d = driver();
    d.send("Proposal", SELLER, offer("p1"));
    expect(outcome(d.send("CounterProposal", BUYER, counter("", "p1")))).toBe("INVALID_ENVELOPE");
    expect(outcome(d.send("CounterProposal", BUYER, counter("p2", "")))).toBe("INVALID_ENVELOPE");
    expect(outcome(d.send("CounterProposal", BUYER, counter("p2", "p9")))).toBe("INVALID_ENVELOPE");
    expect(outcome(d.send("CounterProposal", BUYER, counter("p1", "p1")))).toBe("INVALID_ENVELOPE");
  });

  it("keeps the original Live next to the counter-proposal", () => {
    const d = driver();
    d.send("Proposal", SELLER, offer("p1"));
    expect(outcome(d.send("CounterProposal", BUYER, counter("p2", "p1")))).toBe("ok");
    expect(d.json()).toMatchObject({
      proposals: {
        p1: { disposition: "Live", supersedes_proposal_id: null, proposer: SELLER },
        p2: {
          proposal_id: "p2",
          title: "counter",
          summary: "better",
          details: [9],
          tags: [],
          proposer: BUYER,
          supersedes_proposal_id: "p1",
          disposition: "Live",
        },
      },
    });
    expect(outcome(d.send("Accept", SELLER, accept("p1")))).toBe("ok");
  });

  it("allows superseding a withdrawn proposal", () => {
    const d = driver();
    d.send("Proposal", SELLER, offer("p1"));
    d.send("Withdraw", SELLER, withdraw("p1"));
    expect(outcome(d.send("CounterProposal", BUYER, counter("p2", "p1")))).toBe("ok");
  });

  it("with max_rounds=1 refuses the second counter-proposal with INVALID_ENVELOPE", () => {
    const d = driver(withPolicy(view, { counter_proposal: { max_rounds: 1 } }));
    d.send("Proposal", SELLER, offer("p1"));
    expect(outcome(d.send("CounterProposal", BUYER, counter("p2", "p1")))).toBe("ok");
    expect(outcome(d.send("CounterProposal", SELLER, counter("p3", "p2")))).toBe(
      "INVALID_ENVELOPE",
    );
  });
});

describe("proposal mode: Accept, Reject and Withdraw", () => {
  it("rejects Accept or Reject on an unknown or withdrawn proposal", () => {
    const d = driver();
    expect(outcome(d.send("Accept", BUYER, accept("p1")))).toBe("INVALID_ENVELOPE");
    expect(outcome(d.send("Reject", BUYER, reject("p1")))).toBe("INVALID_ENVELOPE");
    d.send("Proposal", SELLER, offer("p1"));
    d.send("Withdraw", SELLER, withdraw("p1"));
    expect(outcome(d.send("Accept", BUYER, accept("p1")))).toBe("INVALID_ENVELOPE");
    expect(outcome(d.send("Reject", BUYER, reject("p1")))).toBe("INVALID_ENVELOPE");
  });

  it("replaces a participant's earlier accept", () => {
    const d = driver();
    d.send("Proposal", SELLER, offer("p1"));
    d.send("Proposal", SELLER, offer("p2"));
    d.send("Accept", BUYER, accept("p1"));
    d.send("Accept", BUYER, accept("p2"));
    expect(d.json()).toMatchObject({ accepts: { [BUYER]: "p2" } });
  });

  it("records every reject, terminal ones twice, and keeps the sender's accept", () => {
    const d = driver();
    d.send("Proposal", SELLER, offer("p1"));
    d.send("Accept", BUYER, accept("p1"));
    d.send("Reject", BUYER, reject("p1"));
    expect(phaseOf(d)).toBe("Negotiating");
    d.send("Reject", BUYER, reject("p1", true));
    expect(d.json()).toMatchObject({
      accepts: { [BUYER]: "p1" },
      terminal_rejections: [{ proposal_id: "p1", sender: BUYER, reason: "no" }],
      rejections: [
        { proposal_id: "p1", sender: BUYER, reason: "no", terminal: false },
        { proposal_id: "p1", sender: BUYER, reason: "no", terminal: true },
      ],
      phase: "TerminalRejected",
    });
  });

  it("treats every reject as terminal under rejection.terminal_on_any_reject", () => {
    const d = driver(withPolicy(view, { rejection: { terminal_on_any_reject: true } }));
    d.send("Proposal", SELLER, offer("p1"));
    d.send("Reject", BUYER, reject("p1"));
    expect(phaseOf(d)).toBe("TerminalRejected");
  });

  it("refuses a Withdraw with a blank id, an unknown id, or from a non-proposer", () => {
    const d = driver();
    d.send("Proposal", SELLER, offer("p1"));
    expect(outcome(d.send("Withdraw", SELLER, withdraw(" ")))).toBe("INVALID_ENVELOPE");
    expect(outcome(d.send("Withdraw", SELLER, withdraw("p9")))).toBe("INVALID_ENVELOPE");
    expect(outcome(d.send("Withdraw", BUYER, withdraw("p1")))).toBe("FORBIDDEN");
    expect(outcome(d.send("Withdraw", SELLER, withdraw("p1")))).toBe("ok");
    expect(outcome(d.send("Withdraw", SELLER, withdraw("p1")))).toBe("INVALID_ENVELOPE");
  });

  it("lets a counter-proposal's own sender withdraw it", () => {
    const d = driver();
    d.send("Proposal", SELLER, offer("p1"));
    d.send("CounterProposal", BUYER, counter("p2", "p1"));
    expect(outcome(d.send("Withdraw", SELLER, withdraw("p2")))).toBe("FORBIDDEN");
    expect(outcome(d.send("Withdraw", BUYER, withdraw("p2")))).toBe("ok");
  });

  it("withdrawing p1 clears its accepts and terminal rejection but keeps p2's", () => {
    const d = driver();
    d.send("Proposal", SELLER, offer("p1"));
    d.send("Proposal", SELLER, offer("p2"));
    d.send("Accept", BUYER, accept("p1"));
    d.send("Reject", BUYER, reject("p1", true));
    d.send("Reject", BUYER, reject("p2", true));
    d.send("Withdraw", SELLER, withdraw("p1"));
    expect(d.json()).toMatchObject({
      proposals: { p1: { disposition: "Withdrawn" } },
      accepts: {},
      terminal_rejections: [{ proposal_id: "p2" }],
      phase: "TerminalRejected",
    });
    expect(d.state.rejections).toHaveLength(2);
    d.send("Withdraw", SELLER, withdraw("p2"));
    expect(phaseOf(d)).toBe("Negotiating");
  });
});

describe("proposal mode: convergence criteria", () => {
  it("all_parties (the default) needs every participant's latest accept", () => {
    const d = driver();
    d.send("Proposal", SELLER, offer("p1"));
    d.send("Accept", BUYER, accept("p1"));
    expect(phaseOf(d)).toBe("Negotiating");
    d.send("Accept", SELLER, accept("p1"));
    expect(phaseOf(d)).toBe("Converged");
  });

  it("an unknown criterion acts as all_parties", () => {
    const d = driver(withPolicy(view, { acceptance: { criterion: "whoever" } }));
    d.send("Proposal", SELLER, offer("p1"));
    d.send("Accept", BUYER, accept("p1"));
    expect(phaseOf(d)).toBe("Negotiating");
  });

  it("counterparty needs everyone but the proposer", () => {
    const d = driver(withPolicy(view, { acceptance: { criterion: "counterparty" } }));
    d.send("Proposal", SELLER, offer("p1"));
    expect(phaseOf(d)).toBe("Negotiating");
    d.send("Accept", BUYER, accept("p1"));
    expect(phaseOf(d)).toBe("Converged");
  });

  it("counterparty converges at once when the proposer is the only participant", () => {
    const solo = withPolicy(session({ mode: "macp.mode.proposal.v1", participants: [SELLER] }), {
      acceptance: { criterion: "counterparty" },
    });
    const d = driver(solo);
    d.send("Proposal", SELLER, offer("p1"));
    expect(phaseOf(d)).toBe("Converged");
  });

  it("initiator needs the initiator's accept, and never converges if it is not a participant", () => {
    const d = driver(withPolicy(view, { acceptance: { criterion: "initiator" } }));
    d.send("Proposal", SELLER, offer("p1"));
    d.send("Accept", SELLER, accept("p1"));
    expect(phaseOf(d)).toBe("Negotiating");
    d.send("Accept", BUYER, accept("p1"));
    expect(phaseOf(d)).toBe("Converged");

    const outside = withPolicy(
      session({
        mode: "macp.mode.proposal.v1",
        initiator: "agent://boss",
        participants: [SELLER, BUYER],
      }),
      { acceptance: { criterion: "initiator" } },
    );
    const e = driver(outside);
    e.send("Proposal", SELLER, offer("p1"));
    e.send("Accept", SELLER, accept("p1"));
    e.send("Accept", BUYER, accept("p1"));
    expect(phaseOf(e)).toBe("Negotiating");
    expect(outcome(e.send("Accept", "agent://boss", accept("p1")))).toBe("FORBIDDEN");
  });

  it("a withdrawn proposal never counts as converged", () => {
    const d = driver();
    d.send("Proposal", SELLER, offer("p1"));
    d.send("Accept", BUYER, accept("p1"));
    d.send("Accept", SELLER, accept("p1"));
    d.send("Withdraw", SELLER, withdraw("p1"));
    expect(phaseOf(d)).toBe("Negotiating");
  });
});

describe("proposal mode: Commitment", () => {
  it("proposal_reject_paths: no convergence, then a bad counter-proposal; ends Negotiating", () => {
    const d = driver();
    const commit = commitment(view, { action: "proposal.accepted" });
    expect(outcome(d.send("Commitment", BUYER, commit))).toBe("INVALID_ENVELOPE");
    expect(outcome(d.send("CounterProposal", SELLER, counter("p2", "")))).toBe("INVALID_ENVELOPE");
    expect(d.json()).toMatchObject({ phase: "Negotiating" });
  });

  it("refuses a Commitment from anyone but the initiator under the default policy", () => {
    const d = driver();
    d.send("Proposal", SELLER, offer("p1"));
    d.send("Accept", BUYER, accept("p1"));
    d.send("Accept", SELLER, accept("p1"));
    expect(outcome(d.send("Commitment", SELLER, commitment(view)))).toBe("FORBIDDEN");
  });

  it("proposal_happy_path: resolves with the payload and the documented final state", () => {
    const d = driver();
    expect(outcome(d.send("Proposal", SELLER, offer("p1", "offer", "terms")))).toBe("ok");
    expect(outcome(d.send("Accept", BUYER, accept("p1")))).toBe("ok");
    expect(outcome(d.send("Accept", SELLER, accept("p1")))).toBe("ok");
    const commit = commitment(view, { action: "proposal.accepted", outcomePositive: true });
    expect(outcome(d.send("Commitment", BUYER, commit))).toBe("ok");
    expect(d.resolution).toEqual(commit);
    expect(d.text()).toBe(
      '{"proposals":{"p1":{"proposal_id":"p1","title":"offer","summary":"terms","details":[],"tags":[],"proposer":"agent://seller","supersedes_proposal_id":null,"disposition":"Live"}},"accepts":{"agent://buyer":"p1","agent://seller":"p1"},"terminal_rejections":[],"rejections":[],"phase":"Committed"}',
    );
    expect(outcome(d.send("Accept", BUYER, accept("p1")))).toBe("SESSION_NOT_OPEN");
  });

  it("proposal_negative_outcome: a terminal reject allows proposal.rejected", () => {
    const d = driver();
    d.send("Proposal", SELLER, offer("p1"));
    d.send("Reject", BUYER, reject("p1", true));
    const decline = commitment(view, { action: "proposal.rejected", outcomePositive: false });
    expect(outcome(d.send("Commitment", BUYER, decline))).toBe("ok");
    expect(d.state.phase).toBe("Committed");
  });

  it("does not cross-check the direction: a positive outcome is accepted while TerminalRejected", () => {
    const d = driver();
    d.send("Proposal", SELLER, offer("p1"));
    d.send("Reject", BUYER, reject("p1", true));
    const positive = commitment(view, { action: "proposal.accepted", outcomePositive: true });
    expect(outcome(d.send("Commitment", BUYER, positive))).toBe("ok");
  });

  it("is denied by a policy whose rules cannot be read", () => {
    const d = driver(withPolicy(view, { counter_proposal: { max_rounds: -1 } }));
    d.send("Proposal", SELLER, offer("p1"));
    d.send("Reject", BUYER, reject("p1", true));
    const decline = commitment(d.view, { action: "proposal.rejected", outcomePositive: false });
    expect(outcome(d.send("Commitment", BUYER, decline))).toBe("POLICY_DENIED");
  });

  it("handles proposal ids that collide with object internals", () => {
    const d = driver();
    for (const id of ["__proto__", "10", "2", "constructor"]) {
      expect(outcome(d.send("Proposal", SELLER, offer(id)))).toBe("ok");
    }
    expect(d.text()).toMatch(/^\{"proposals":\{"10":.*,"2":.*,"__proto__":.*,"constructor":/);
  });
});
