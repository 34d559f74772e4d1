// ext.multi_round.v1: two agents keep contributing until their values agree;
// the coordinator then commits the converged value.

import { multiRound } from "@macp/proto";
import {
  type Agent,
  commitmentPayload,
  type Example,
  ExampleFailure,
  type ExpectedAck,
  encode,
  openExampleSession,
  SessionState,
  withConnection,
} from "./support.js";

export const runMultiRound: Example = (options) =>
  withConnection(options, async (connection) => {
    const coordinator = connection.agent("agent://coordinator");
    const alice = connection.agent("agent://alice");
    const bob = connection.agent("agent://bob");
    const session = await openExampleSession(connection, {
      mode: "ext.multi_round.v1",
      clientName: "multi-round-example",
      initiator: coordinator,
      intent: "Pick a maintenance window",
      participants: [alice, bob],
    });
    const contribute = (agent: Agent, value: string, expected: ExpectedAck, note: string) =>
      session.step(
        agent,
        "Contribute",
        encode(multiRound.ContributePayloadSchema, { value }),
        expected,
        note,
      );
    const commit = (expected: ExpectedAck, note?: string) =>
      session.step(
        coordinator,
        "Commitment",
        commitmentPayload({
          action: "multi_round.converged",
          outcomePositive: true,
          reason: "Participants agree",
          authorityScope: "scheduling",
        }),
        expected,
        note,
      );

    await contribute(alice, "sat-02:00", { ok: true }, "round 1");
    await contribute(bob, "sun-04:00", { ok: true }, "round 1");

    await session.expectState(coordinator, SessionState.OPEN, "diverged");

    // The values differ, so there is nothing to commit yet.
    await commit({ ok: false, code: "INVALID_ENVELOPE" }, "before convergence");

    await contribute(bob, "sat-02:00", { ok: true }, "round 2");
    // After convergence no further contributions are taken.
    await contribute(
      alice,
      "fri-23:00",
      { ok: false, code: "INVALID_ENVELOPE" },
      "after convergence",
    );

    await commit({ ok: true, state: SessionState.RESOLVED });

    const resolved = await session.expectState(alice, SessionState.RESOLVED, "resolved");
    if (resolved.initiator !== coordinator.id) {
      throw new ExampleFailure(
        "GetSession (alice, resolved)",
        `initiator is '${resolved.initiator}'`,
      );
    }
  });
