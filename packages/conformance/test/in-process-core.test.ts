import { randomUUID } from "node:crypto";
import { createDevIdentity, createMemoryStore, createRuntime, type MacpRuntime } from "@macp/core";
import { describe, expect, it } from "vitest";
import { type ConformanceDriver, loadVectors, runVector } from "../src/index.js";

const vectors = loadVectors();

/** Drives the kernel directly: no transport, dev identities, a simulated clock. */
function coreDriver(runtime: MacpRuntime, rebuild: () => Promise<MacpRuntime>): ConformanceDriver {
  const admin = createDevIdentity("agent://conformance-admin");
  return {
    async registerPolicy(descriptor) {
      const outcome = runtime.registerPolicy(descriptor, admin);
      if (outcome.isErr() || !outcome.value.ok) {
        throw new Error(`policy refused: ${JSON.stringify(outcome)}`);
      }
    },
    async send(envelope) {
      const result = await runtime.send(envelope, createDevIdentity(envelope.sender));
      if (result.isOk()) return result.value;
      return {
        $typeName: "macp.v1.Ack",
        ok: false,
        duplicate: false,
        messageId: envelope.messageId,
        sessionId: envelope.sessionId,
        acceptedAtUnixMs: 0n,
        sessionState: 0,
        error: {
          $typeName: "macp.v1.MACPError",
          code: result.error.code,
          message: result.error.message,
          sessionId: envelope.sessionId,
          messageId: envelope.messageId,
          details: new Uint8Array(0),
        },
      };
    },
    async sessionState(sessionId, asSender) {
      const metadata = await runtime.getSession(sessionId, createDevIdentity(asSender));
      if (metadata.isErr()) throw new Error(metadata.error.message);
      return metadata.value.state;
    },
    async inspect(sessionId) {
      const snapshot = runtime.inspectSession(sessionId);
      if (!snapshot) throw new Error("session not in memory");
      return { modeState: snapshot.modeState, resolution: snapshot.resolution };
    },
    async replayDifference(sessionId) {
      const live = runtime.inspectSession(sessionId);
      const replayed = (await rebuild()).inspectSession(sessionId);
      expect(replayed).toEqual(live);
      return undefined;
    },
  };
}

describe("conformance vectors, in-process against @macp/core", () => {
  it("ships all 17 vectors", () => {
    expect(vectors).toHaveLength(17);
  });

  for (const vector of vectors) {
    it(vector.name, async () => {
      let now = 1_750_000_000_000;
      const clock = { now: () => now };
      const store = createMemoryStore();
      const runtime = createRuntime({ clock, store });
      const rebuild = async () => {
        const fresh = createRuntime({ clock, store });
        const report = await fresh.recover();
        expect(report.quarantined).toEqual([]);
        return fresh;
      };
      const steps = await runVector(vector, coreDriver(runtime, rebuild), {
        sessionId: randomUUID(),
        now: () => now++,
      });
      expect(steps).toHaveLength(vector.messages.length);
    });
  }
});
