// The example in packages/in-process/README.md, verbatim (a test checks it).
import { create, toBinary } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createRuntime } from "@macp/core";
import { createAgentTestHarness, createInProcessTransport, SimulatedClock } from "@macp/in-process";
import { MACPRuntimeService, SessionStartPayloadSchema, SessionState } from "@macp/proto";

const startPayload = toBinary(
  SessionStartPayloadSchema,
  create(SessionStartPayloadSchema, {
    participants: ["agent://alice", "agent://bob"],
    modeVersion: "1.0.0",
    configurationVersion: "cfg-1",
    ttlMs: 30_000n,
  }),
);

export async function runReadmeExample() {
  // One client per agent, a runtime on a simulated clock, no sockets.
  const harness = createAgentTestHarness({ agents: ["agent://alice", "agent://bob"] });
  const alice = harness.client("agent://alice");
  const { ack } = await alice.send({
    envelope: {
      macpVersion: "1.0",
      mode: "macp.mode.decision.v1",
      messageType: "SessionStart",
      messageId: "m1",
      sessionId: "readme-example-session-01",
      sender: "agent://alice",
      timestampUnixMs: BigInt(harness.clock.now()),
      payload: startPayload,
    },
  });

  // 30 s pass at once: the TTL expires without the test waiting for it.
  await harness.advance(30_001);
  const { metadata } = await harness
    .client("agent://bob")
    .getSession({ sessionId: "readme-example-session-01" });
  await harness.close();

  // Or only the transport, for a runtime you build yourself.
  const runtime = createRuntime({ clock: new SimulatedClock() });
  const client = createClient(
    MACPRuntimeService,
    createInProcessTransport(runtime, { identity: "agent://alice" }),
  );
  const { modes } = await client.listModes({});
  await runtime.close();

  return {
    started: ack?.ok,
    state: metadata === undefined ? undefined : SessionState[metadata.state],
    modes: modes.length,
  };
}
