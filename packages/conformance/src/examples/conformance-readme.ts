// The example in packages/conformance/README.md, verbatim (test/readme-examples.test.ts checks and runs it).
import { type ConformanceDriver, loadVectors, runVector } from "@macp/conformance";
import { createDevIdentity, createRuntime } from "@macp/core";
import { nackAck } from "@macp/core/wire";

export async function runOneVector(name: string, vectors = loadVectors()) {
  const vector = vectors.find((candidate) => candidate.name === name);
  if (vector === undefined) throw new Error(`no vector named ${name}`);
  let now = 1_750_000_000_000;
  const runtime = createRuntime({ clock: { now: () => now } });

  // The runtime under test, as the runner sees it.
  // This one drives the kernel directly; a driver for a server calls its RPCs.
  const driver: ConformanceDriver = {
    async registerPolicy(descriptor) {
      const outcome = runtime.registerPolicy(descriptor, createDevIdentity("agent://admin"));
      if (outcome.isErr() || !outcome.value.ok) throw new Error("policy refused");
    },
    async send(envelope) {
      const result = await runtime.send(envelope, createDevIdentity(envelope.sender));
      if (result.isOk()) return result.value;
      // A refusal goes back as the NACK a server would answer with.
      const { sessionId, messageId } = envelope;
      return nackAck(result.error, { sessionId, messageId, now });
    },
    async sessionState(sessionId, asSender) {
      const metadata = await runtime.getSession(sessionId, createDevIdentity(asSender));
      if (metadata.isErr()) throw new Error(metadata.error.message);
      return metadata.value.state;
    },
    async inspect(sessionId) {
      const snapshot = runtime.inspectSession(sessionId);
      return { modeState: snapshot?.modeState, resolution: snapshot?.resolution };
    },
  };

  try {
    // Throws a ConformanceFailure, naming the vector and the first difference, if the runtime fails it.
    const steps = await runVector(vector, driver, {
      sessionId: "conformance-readme-session-0001",
      now: () => now++,
    });
    return steps.map(
      (step) => `${step.messageType}: ${step.ack.ok ? "accepted" : step.ack.error?.code}`,
    );
  } finally {
    await runtime.close();
  }
}
