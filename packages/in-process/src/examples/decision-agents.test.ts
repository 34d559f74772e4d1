import { fromBinary } from "@bufbuild/protobuf";
import { type AgentTestHarness, createAgentTestHarness, recordTranscript } from "@macp/in-process";
import { CommitmentPayloadSchema, SessionState } from "@macp/proto";
import { afterEach, describe, expect, it } from "vitest";
import { type Agent, castVote, openDecision, runVoter } from "./decision-agents.js";

const PROPOSER = "agent://release-manager";
const ALICE = "agent://qa";
const BOB = "agent://security";
// Fixed ids: anything random in a message would end up in the transcript.
const SESSION_ID = "release-review-2026-01-01";

const agents = [PROPOSER, ALICE, BOB];
let harness: AgentTestHarness;

function agent(h: AgentTestHarness, name: string): Agent {
  return { client: h.client(name), name, now: () => h.clock.now() };
}

/** The whole decision: two voters wait for an invitation, the proposer opens, both vote, it commits. */
async function decide(h: AgentTestHarness) {
  const voters = [
    runVoter(agent(h, ALICE), { judge: () => "APPROVE" }),
    runVoter(agent(h, BOB), { judge: (p) => (p.option.includes("Friday") ? "REJECT" : "APPROVE") }),
  ];
  const open = await openDecision(agent(h, PROPOSER), {
    sessionId: SESSION_ID,
    voters: [ALICE, BOB],
    option: "ship 1.4 on Monday",
    ttlMs: 60_000,
  });
  const outcome = await open.conclude();
  return { outcome, reports: await Promise.all(voters) };
}

afterEach(async () => {
  await harness.close();
});

describe("decision agents", () => {
  it("reach a decision", async () => {
    harness = createAgentTestHarness({ agents });
    const { outcome, reports } = await decide(harness);

    expect(outcome).toMatchObject({
      kind: "committed",
      action: "decision.selected",
      votes: { [ALICE]: "APPROVE", [BOB]: "APPROVE" },
    });
    expect(reports.map((report) => report.action)).toEqual([
      "decision.selected",
      "decision.selected",
    ]);
    const session = harness.session(SESSION_ID);
    expect(session?.metadata.state).toBe(SessionState.RESOLVED);
    expect(session?.resolution).toBeDefined();
    const resolution = fromBinary(CommitmentPayloadSchema, session?.resolution ?? new Uint8Array());
    expect(resolution.action).toBe("decision.selected");
    const history = await harness.history(SESSION_ID);
    expect(history.map((envelope) => `${envelope.messageType} ${envelope.sender}`)).toEqual([
      `SessionStart ${PROPOSER}`,
      `Proposal ${PROPOSER}`,
      `Vote ${ALICE}`,
      `Vote ${BOB}`,
      `Commitment ${PROPOSER}`,
    ]);
  });

  it("expire at the TTL, without waiting for it", async () => {
    harness = createAgentTestHarness({ agents });
    const open = await openDecision(agent(harness, PROPOSER), {
      sessionId: SESSION_ID,
      voters: [ALICE, BOB],
      option: "ship 1.4 on Monday",
      ttlMs: 60_000,
    });

    // The TTL runs from the SessionStart; expiry is strict (now > deadline).
    await harness.advance(60_000);
    expect(harness.session(SESSION_ID)?.metadata.state).toBe(SessionState.OPEN);
    await harness.advance(1);
    expect(harness.session(SESSION_ID)?.metadata.state).toBe(SessionState.EXPIRED);

    expect(await open.conclude()).toEqual({
      kind: "ended",
      state: SessionState.EXPIRED,
      votes: {},
    });
    const late = await castVote(agent(harness, ALICE), SESSION_ID, "APPROVE");
    expect(late?.ok).toBe(false);
    expect(late?.error?.code).toBe("SESSION_NOT_OPEN");
    expect(harness.session(SESSION_ID)?.acceptedCount).toBe(2);
  });

  it("produce the same transcript on every run", async () => {
    const run = () =>
      recordTranscript({ agents }, async (h) => {
        harness = h;
        await decide(h);
        await h.advance(1_000);
      });
    const first = await run();
    const second = await run();
    expect(second).toBe(first);
    // Every call of every agent is in it, e.g. the commitment's Send and its Ack.
    expect(first).toContain('"kind":"request","call":');
    expect(first).toContain('"method":"Send"');
    expect(first).toContain('"messageType":"Commitment"');
  });
});
