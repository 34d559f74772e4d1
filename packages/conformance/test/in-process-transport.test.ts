// The conformance vectors through the in-process transport: every envelope
// goes through a Connect client, the server's routes and error mapping, with
// one identity per sender, on a simulated clock.

import { create } from "@bufbuild/protobuf";
import { createMemoryStore, createRuntime } from "@macp/core";
import { type AgentTestHarness, createAgentTestHarness } from "@macp/in-process";
import { AckSchema } from "@macp/proto";
import { describe, expect, it } from "vitest";
import {
  type ConformanceDriver,
  type ConformanceVector,
  loadVectors,
  runVector,
} from "../src/index.js";

const vectors = loadVectors();
const ADMIN = "agent://conformance-admin";

function sendersOf(vector: ConformanceVector): string[] {
  return [
    ...new Set([
      ADMIN,
      vector.initiator,
      ...vector.participants,
      ...vector.messages.map((message) => message.sender),
    ]),
  ];
}

/** A driver that speaks only Connect: each sender calls through its own client. */
function transportDriver(
  harness: AgentTestHarness,
  rebuild: () => Promise<AgentTestHarness["runtime"]>,
): ConformanceDriver {
  return {
    async registerPolicy(policyDescriptor) {
      const outcome = await harness.client(ADMIN).registerPolicy({ policyDescriptor });
      if (!outcome.ok) throw new Error(`policy refused: ${outcome.error}`);
    },
    async send(envelope) {
      const { ack } = await harness.client(envelope.sender).send({ envelope });
      return ack ?? create(AckSchema);
    },
    async sessionState(sessionId, asSender) {
      const { metadata } = await harness.client(asSender).getSession({ sessionId });
      if (metadata === undefined) throw new Error("GetSession answered without metadata");
      return metadata.state;
    },
    async inspect(sessionId) {
      const snapshot = harness.session(sessionId);
      if (snapshot === undefined) throw new Error("session not in memory");
      return { modeState: snapshot.modeState, resolution: snapshot.resolution };
    },
    async replayDifference(sessionId) {
      const replayed = await rebuild();
      try {
        expect(replayed.inspectSession(sessionId)).toEqual(harness.session(sessionId));
      } finally {
        await replayed.close();
      }
      return undefined;
    },
  };
}

describe("conformance vectors, through the in-process Connect transport", () => {
  it("ships all 17 vectors", () => {
    expect(vectors).toHaveLength(17);
  });

  for (const [index, vector] of vectors.entries()) {
    it(vector.name, async () => {
      const store = createMemoryStore();
      const harness = createAgentTestHarness({ agents: sendersOf(vector), store });
      const rebuild = async () => {
        const fresh = createRuntime({ clock: harness.clock, store });
        const report = await fresh.recover();
        expect(report.quarantined).toEqual([]);
        return fresh;
      };
      try {
        const steps = await runVector(vector, transportDriver(harness, rebuild), {
          // Deterministic ids and times: a rerun sends byte-identical envelopes.
          sessionId: `conformance-${String(index).padStart(4, "0")}-${vector.name.replaceAll("_", "-")}`,
          now: () => harness.clock.advance(1),
        });
        expect(steps).toHaveLength(vector.messages.length);
      } finally {
        await harness.close();
      }
    });
  }
});
