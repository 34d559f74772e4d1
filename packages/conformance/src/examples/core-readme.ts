// This file is shown verbatim in packages/core/README.md (test/readme-examples.test.ts checks it).
import { create, toBinary } from "@bufbuild/protobuf";
import { createDevIdentity, createRuntime } from "@macp/core";
import {
  CommitmentPayloadSchema,
  decision,
  EnvelopeSchema,
  SessionStartPayloadSchema,
  SessionState,
} from "@macp/proto";

export async function runExample() {
  // The host owns time; the kernel never reads the system clock.
  const runtime = createRuntime({ clock: { now: () => Date.now() } });
  const alice = createDevIdentity("agent://alice");
  const bob = createDevIdentity("agent://bob");
  const sessionId = crypto.randomUUID();
  let n = 0;
  const send = (as: typeof alice, messageType: string, payload: Uint8Array) =>
    runtime.send(
      create(EnvelopeSchema, {
        macpVersion: "1.0",
        mode: "macp.mode.decision.v1",
        messageType,
        messageId: `m${++n}`,
        sessionId,
        payload,
      }),
      as,
    );

  await send(
    alice,
    "SessionStart",
    toBinary(
      SessionStartPayloadSchema,
      create(SessionStartPayloadSchema, {
        participants: ["agent://alice", "agent://bob"],
        modeVersion: "1.0.0",
        configurationVersion: "cfg-1",
        ttlMs: 60_000n,
      }),
    ),
  );
  await send(
    alice,
    "Proposal",
    toBinary(
      decision.ProposalPayloadSchema,
      create(decision.ProposalPayloadSchema, { proposalId: "p1", option: "ship it" }),
    ),
  );
  await send(
    bob,
    "Vote",
    toBinary(
      decision.VotePayloadSchema,
      create(decision.VotePayloadSchema, { proposalId: "p1", vote: "APPROVE" }),
    ),
  );
  const ack = await send(
    alice,
    "Commitment",
    toBinary(
      CommitmentPayloadSchema,
      create(CommitmentPayloadSchema, {
        commitmentId: "c1",
        action: "decision.selected",
        authorityScope: "release",
        reason: "bob approved",
        modeVersion: "1.0.0",
        configurationVersion: "cfg-1",
        outcomePositive: true,
      }),
    ),
  );

  // Errors are values: a refusal is `ack.error` with a protocol code, never a throw.
  if (ack.isErr()) throw new Error(`${ack.error.code}: ${ack.error.message}`);
  // The mode state in the JSON shape of the protocol's conformance fixtures.
  const modeState = runtime.inspectSession(sessionId)?.modeState as {
    votes: Record<string, object>;
  };
  const votes = modeState.votes;
  return {
    state: `SESSION_STATE_${SessionState[ack.value.sessionState]}`,
    votes: Object.keys(votes.p1 ?? {}).length,
  };
}
