// The curated public API: a change to what @macp/core exports is a deliberate
// change to this list, and internals stay off the root.

import { describe, expect, it } from "vitest";
import * as core from "../src/index.js";
import * as testing from "../src/testing/index.js";

describe("@macp/core exports", () => {
  it("are the runtime, its options and ports, and nothing internal", () => {
    expect(Object.keys(core).sort()).toEqual([
      "BUILT_IN_MODE_VERSION",
      "COMMITMENT",
      "DECISION_MODE",
      "DEFAULT_LIMITS",
      "DEFAULT_POLICY_ID",
      "ERROR_DETAILS_TRAILER",
      "ErrorCode",
      "GrpcStatus",
      "HANDOFF_MODE",
      "MULTI_ROUND_MODE",
      "MacpStreamError",
      "PROPOSAL_MODE",
      "QUORUM_MODE",
      "STANDARD_MODE_ORDER",
      "TASK_MODE",
      "composeObservers",
      "controlRefusal",
      "createDevIdentity",
      "createHealthState",
      "createIdentity",
      "createMemoryStore",
      "createRuntime",
      "decodeLogRecord",
      "encodeLogRecord",
      "errorDetails",
      "isAuthenticated",
      "isJsonObject",
      "isSharedStore",
      "linkSignals",
      "loadPolicyFile",
      "macpError",
      "nackAck",
      "pipeSessionStream",
      "sendRefusal",
      "serializeModeState",
      "statusOf",
      "streamTerminationOf",
      "toWireError",
      "validateCommitmentPayload",
      "validatePolicyRules",
      "watchHealth",
      "wireRuleOf",
    ]);
  });

  it("keep test helpers on @macp/core/testing", () => {
    expect(Object.keys(testing).sort()).toEqual([
      "DEFAULT_EPOCH_MS",
      "SimulatedClock",
      "accepted",
      "commitmentEnvelope",
      "envelope",
      "newSessionId",
      "proposalEnvelope",
      "refusal",
      "startEnvelope",
      "startPayload",
      "take",
      "voteEnvelope",
    ]);
  });

  it("have no sendNow on the runtime", () => {
    const runtime = core.createRuntime({ clock: { now: () => 0 } });
    expect("sendNow" in runtime).toBe(false);
  });
});
