// ext.multi_round.v1: two agents keep contributing until their values agree;
// the coordinator then commits the converged value.

import { multiRound } from "@macp/proto";
import {
  commitmentPayload,
  type Example,
  ExampleFailure,
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

const MODE = "ext.multi_round.v1";

export const runMultiRound: Example = (options) =>
  withConnection(options, async (connection) => {
    const { log } = connection;
    await initialize(connection, "multi-round-example");
    await requireMode(connection, MODE);

    const coordinator = connection.agent("agent://coordinator");
    const alice = connection.agent("agent://alice");
    const bob = connection.agent("agent://bob");
    const sessionId = newSessionId();
    const message = (sender: string, messageType: string, payload: Uint8Array) =>
      envelope({ mode: MODE, sessionId, sender, messageType, payload });
    const contribute = (sender: string, value: string) =>
      message(sender, "Contribute", encode(multiRound.ContributePayloadSchema, { value }));
    const commit = () =>
      message(
        coordinator.id,
        "Commitment",
        commitmentPayload({
          action: "multi_round.converged",
          outcomePositive: true,
          reason: "Participants agree",
          authorityScope: "scheduling",
        }),
      );

    expectAck(
      log,
      "SessionStart (coordinator)",
      await coordinator.send(
        message(
          coordinator.id,
          "SessionStart",
          sessionStartPayload({
            intent: "Pick a maintenance window",
            participants: [alice.id, bob.id],
          }),
        ),
      ),
      { ok: true, state: SessionState.OPEN },
    );

    expectAck(
      log,
      "Contribute (alice, round 1)",
      await alice.send(contribute(alice.id, "sat-02:00")),
      {
        ok: true,
      },
    );
    expectAck(log, "Contribute (bob, round 1)", await bob.send(contribute(bob.id, "sun-04:00")), {
      ok: true,
    });

    const diverged = await coordinator.getSession(sessionId);
    expectSession(log, "GetSession (diverged)", diverged, { state: SessionState.OPEN, mode: MODE });

    // The values differ, so there is nothing to commit yet.
    expectAck(log, "Commitment (before convergence)", await coordinator.send(commit()), {
      ok: false,
      code: "INVALID_ENVELOPE",
    });

    expectAck(log, "Contribute (bob, round 2)", await bob.send(contribute(bob.id, "sat-02:00")), {
      ok: true,
    });
    // After convergence no further contributions are taken.
    expectAck(
      log,
      "Contribute (alice, after convergence)",
      await alice.send(contribute(alice.id, "fri-23:00")),
      {
        ok: false,
        code: "INVALID_ENVELOPE",
      },
    );

    expectAck(log, "Commitment (coordinator)", await coordinator.send(commit()), {
      ok: true,
      state: SessionState.RESOLVED,
    });

    const resolved = await alice.getSession(sessionId);
    expectSession(log, "GetSession (resolved)", resolved, {
      state: SessionState.RESOLVED,
      mode: MODE,
    });
    if (resolved.initiator !== coordinator.id) {
      throw new ExampleFailure("GetSession (resolved)", `initiator is '${resolved.initiator}'`);
    }
  });
