import { create, toBinary } from "@bufbuild/protobuf";
import { createAgentTestHarness } from "@macp/in-process";
import {
  CommitmentPayloadSchema,
  handoff,
  SessionStartPayloadSchema,
  SessionState,
} from "@macp/proto";
import { expect, it } from "vitest";

const OWNER = "agent://tier-1";
const TARGET = "agent://tier-2";
const OPS = "agent://ops";
const SESSION_ID = "escalation-2026-01-01-0001";
const POLICY_ID = "policy.handoff.auto-accept";

it("a handoff nobody answers is accepted implicitly when its timeout passes", async () => {
  const harness = createAgentTestHarness({ agents: [OWNER, TARGET, OPS] });
  const owner = harness.client(OWNER);
  let n = 0;
  const send = (messageType: string, payload: Uint8Array) =>
    owner.send({
      envelope: {
        macpVersion: "1.0",
        mode: "macp.mode.handoff.v1",
        messageType,
        messageId: `m${++n}`,
        sessionId: SESSION_ID,
        sender: OWNER,
        timestampUnixMs: BigInt(harness.clock.now()),
        payload,
      },
    });

  // A governance policy (RFC-MACP-0012): an offer not answered in 30 s counts as accepted.
  const registered = await harness.client(OPS).registerPolicy({
    policyDescriptor: {
      policyId: POLICY_ID,
      mode: "macp.mode.handoff.v1",
      description: "escalations cannot stall",
      rules: JSON.stringify({ acceptance: { implicit_accept_timeout_ms: 30_000 } }),
      schemaVersion: 1,
    },
  });
  expect(registered).toMatchObject({ ok: true, error: "" });

  const started = await send(
    "SessionStart",
    toBinary(
      SessionStartPayloadSchema,
      create(SessionStartPayloadSchema, {
        intent: "escalate ticket 4711",
        participants: [OWNER, TARGET],
        modeVersion: "1.0.0",
        configurationVersion: "support/1",
        policyVersion: POLICY_ID,
        ttlMs: 600_000n,
      }),
    ),
  );
  expect(started.ack?.ok).toBe(true);
  const offered = await send(
    "HandoffOffer",
    toBinary(
      handoff.HandoffOfferPayloadSchema,
      create(handoff.HandoffOfferPayloadSchema, {
        handoffId: "h1",
        targetParticipant: TARGET,
        scope: "ticket-4711",
        reason: "needs tier 2",
      }),
    ),
  );
  expect(offered.ack?.ok).toBe(true);

  // The target stays silent. One millisecond short of the timeout nothing happens…
  await harness.advance(29_999);
  type HandoffState = { offers: Record<string, { disposition: string }> };
  const offers = () => (harness.session(SESSION_ID)?.modeState as HandoffState | undefined)?.offers;
  expect(offers()?.h1?.disposition).toBe("Offered");

  // …and at the timeout the runtime accepts on the target's behalf, at that exact instant.
  await harness.advance(1);
  expect(offers()?.h1?.disposition).toBe("Accepted");
  const accept = (await harness.history(SESSION_ID)).at(-1);
  expect(accept).toMatchObject({
    messageType: "HandoffAccept",
    messageId: "implicit-accept:h1",
    sender: TARGET,
    timestampUnixMs: BigInt(harness.clock.now()),
  });

  const committed = await send(
    "Commitment",
    toBinary(
      CommitmentPayloadSchema,
      create(CommitmentPayloadSchema, {
        commitmentId: "c1",
        action: "handoff.accepted",
        authorityScope: "support",
        reason: "tier 2 owns it now",
        modeVersion: "1.0.0",
        configurationVersion: "support/1",
        policyVersion: POLICY_ID,
        outcomePositive: true,
      }),
    ),
  );
  expect(committed.ack?.sessionState).toBe(SessionState.RESOLVED);
  await harness.close();
});
