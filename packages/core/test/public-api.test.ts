// The curated public API: a change to what @macp/core exports is a deliberate
// change to this list, and internals stay off the root.

import { describe, expect, it } from "vitest";
import * as core from "../src/index.js";
import * as testing from "../src/testing/index.js";
import * as wire from "../src/wire/index.js";

describe("@macp/core exports", () => {
  it("are the runtime, its options and ports, and nothing internal", () => {
    expect(Object.keys(core).sort()).toEqual([
      "BUILT_IN_MODE_VERSION",
      "COMMITMENT",
      "DECISION_MODE",
      "DEFAULT_LIMITS",
      "DEFAULT_POLICY_ID",
      "ErrorCode",
      "HANDOFF_MODE",
      "MULTI_ROUND_MODE",
      "MacpStreamError",
      "PROPOSAL_MODE",
      "QUORUM_MODE",
      "STANDARD_MODE_ORDER",
      "TASK_MODE",
      "builtInPolicyRules",
      "composeObservers",
      "createDevIdentity",
      "createIdentity",
      "createMemoryStore",
      "createRuntime",
      "decodeLogRecord",
      "encodeLogRecord",
      "errorDetails",
      "isAuthenticated",
      "isJsonObject",
      "isSharedStore",
      "loadPolicyFile",
      "macpError",
      "serializeModeState",
      "validateCommitmentPayload",
    ]);
  });

  it("keep test helpers on @macp/core/testing", () => {
    expect(Object.keys(testing).sort()).toEqual([
      "DEFAULT_EPOCH_MS",
      "SimulatedClock",
      "accepted",
      "commitmentEnvelope",
      "envelope",
      "extModeDescriptor",
      "newSessionId",
      "proposalEnvelope",
      "refusal",
      "startEnvelope",
      "startPayload",
      "take",
      "voteEnvelope",
    ]);
  });

  it("keep what transports share on @macp/core/wire", () => {
    expect(Object.keys(wire).sort()).toEqual([
      "ERROR_DETAILS_TRAILER",
      "GrpcStatus",
      "controlRefusal",
      "createHealthState",
      "linkSignals",
      "nackAck",
      "pipeSessionStream",
      "sendRefusal",
      "statusOf",
      "streamTerminationOf",
      "toWireError",
      "watchHealth",
      "wireRuleOf",
    ]);
  });

  it("have no sendNow on the runtime", () => {
    const runtime = core.createRuntime({ clock: { now: () => 0 } });
    expect("sendNow" in runtime).toBe(false);
  });
});
