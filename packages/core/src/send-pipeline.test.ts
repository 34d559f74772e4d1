import { create } from "@bufbuild/protobuf";
import { InitializeRequestSchema, SessionState } from "@macp/proto";
import { describe, expect, it } from "vitest";
import { ErrorCode } from "./errors.js";
import { createIdentity } from "./identity.js";
import {
  accepted,
  DECISION,
  envelope,
  harness,
  proposalEnvelope,
  refusal,
  sessionId,
  startEnvelope,
  T0,
} from "./testing/fixtures.js";

describe("Initialize and discovery", () => {
  it("refuses an empty version list and a list without 1.0", () => {
    const { runtime } = harness();
    const empty = runtime.initialize(create(InitializeRequestSchema, {}));
    expect(empty._unsafeUnwrapErr().code).toBe(ErrorCode.INVALID_REQUEST);
    const other = runtime.initialize(
      create(InitializeRequestSchema, { supportedProtocolVersions: ["2.0"] }),
    );
    expect(other._unsafeUnwrapErr().code).toBe(ErrorCode.UNSUPPORTED_PROTOCOL_VERSION);
  });

  it("selects 1.0 wherever it is in the list and advertises the runtime", () => {
    const { runtime } = harness({ policyRegistryReadOnly: true });
    const response = runtime
      .initialize(create(InitializeRequestSchema, { supportedProtocolVersions: ["2.0", "1.0"] }))
      ._unsafeUnwrap();
    expect(response.selectedProtocolVersion).toBe("1.0");
    expect(response.supportedModes).toEqual([
      "ext.multi_round.v1",
      "macp.mode.decision.v1",
      "macp.mode.handoff.v1",
      "macp.mode.proposal.v1",
      "macp.mode.quorum.v1",
      "macp.mode.task.v1",
    ]);
    expect(response.capabilities?.policyRegistry?.registerPolicy).toBe(false);
    expect(response.capabilities?.sessions?.stream).toBe(true);
    expect(response.capabilities?.experimental?.features.ext_mode_lifecycle).toBe("true");
    expect(response.runtimeInfo?.name).toBe("macp-ts");
  });

  it("serves its own manifest and NOT_FOUND for other agents", () => {
    const { runtime } = harness();
    expect(runtime.getManifest("")._unsafeUnwrap().supportedModes).toHaveLength(6);
    expect(runtime.getManifest("macp-ts")._unsafeUnwrap().agentId).toBe("macp-ts");
    expect(runtime.getManifest("agent://other")._unsafeUnwrapErr().code).toBe(ErrorCode.NOT_FOUND);
  });

  it("lists standards-track and extension modes apart", () => {
    const { runtime } = harness();
    expect(runtime.listModes().map((m) => m.mode)).toEqual([
      "macp.mode.decision.v1",
      "macp.mode.proposal.v1",
      "macp.mode.task.v1",
      "macp.mode.handoff.v1",
      "macp.mode.quorum.v1",
    ]);
    expect(runtime.listExtModes().map((m) => m.mode)).toEqual(["ext.multi_round.v1"]);
    expect(runtime.listRoots()).toEqual([]);
  });
});

describe("Send: shape checks come before authentication", () => {
  const unauthenticated = { unauthenticated: "no credentials" };

  it("answers a missing envelope with INVALID_REQUEST", async () => {
    const { runtime } = harness();
    expect(await refusal(runtime, undefined)).toBe(ErrorCode.INVALID_REQUEST);
  });

  it("refuses any version but 1.0, even for an unauthenticated caller", async () => {
    const { runtime } = harness();
    const env = envelope({ macpVersion: "1.0.0", sessionId: sessionId() });
    expect(await refusal(runtime, env, unauthenticated)).toBe(
      ErrorCode.UNSUPPORTED_PROTOCOL_VERSION,
    );
  });

  it("requires message_type and message_id", async () => {
    const { runtime } = harness();
    expect(await refusal(runtime, envelope({ messageType: "", sessionId: sessionId() }))).toBe(
      ErrorCode.INVALID_ENVELOPE,
    );
    expect(await refusal(runtime, envelope({ messageId: "", sessionId: sessionId() }))).toBe(
      ErrorCode.INVALID_ENVELOPE,
    );
  });

  it("requires Signals to be ambient and session messages to be scoped", async () => {
    const { runtime } = harness();
    const scopedSignal = envelope({ messageType: "Signal", sessionId: sessionId(), mode: "" });
    expect(await refusal(runtime, scopedSignal)).toBe(ErrorCode.INVALID_ENVELOPE);
    const signalWithMode = envelope({ messageType: "Signal", sessionId: "", mode: DECISION });
    expect(await refusal(runtime, signalWithMode)).toBe(ErrorCode.INVALID_ENVELOPE);
    const ambientProgressWithMode = envelope({ messageType: "Progress", sessionId: "" });
    expect(await refusal(runtime, ambientProgressWithMode)).toBe(ErrorCode.INVALID_ENVELOPE);
    expect(await refusal(runtime, envelope({ sessionId: "" }))).toBe(ErrorCode.INVALID_ENVELOPE);
    expect(await refusal(runtime, envelope({ sessionId: sessionId(), mode: "  " }))).toBe(
      ErrorCode.INVALID_ENVELOPE,
    );
  });

  it("refuses payloads over the limit with PAYLOAD_TOO_LARGE", async () => {
    const { runtime } = harness({ limits: { maxPayloadBytes: 16 } });
    const env = envelope({ sessionId: sessionId(), payload: new Uint8Array(17) });
    expect(await refusal(runtime, env, unauthenticated)).toBe(ErrorCode.PAYLOAD_TOO_LARGE);
  });

  it("then refuses unauthenticated callers and spoofed senders", async () => {
    const { runtime, as } = harness();
    const env = envelope({ sessionId: sessionId(), sender: "" });
    expect(await refusal(runtime, env, unauthenticated)).toBe(ErrorCode.UNAUTHENTICATED);
    const spoofed = envelope({ sessionId: sessionId(), sender: "agent://mallory" });
    expect(await refusal(runtime, spoofed, as("agent://alice"))).toBe(ErrorCode.UNAUTHENTICATED);
  });

  it("fills an empty sender from the identity", async () => {
    const { runtime, as } = harness();
    const id = sessionId();
    await accepted(runtime, startEnvelope(id, "", {}), as("agent://alice"));
    const metadata = (await runtime.getSession(id, as("agent://alice")))._unsafeUnwrap();
    expect(metadata.initiator).toBe("agent://alice");
  });

  it("enforces can_start_sessions and allowed_modes with FORBIDDEN", async () => {
    const { runtime } = harness();
    const noStart = createIdentity({ sender: "agent://a", canStartSessions: false });
    expect(await refusal(runtime, startEnvelope(sessionId(), "agent://a"), noStart)).toBe(
      ErrorCode.FORBIDDEN,
    );
    const taskOnly = createIdentity({ sender: "agent://a", allowedModes: ["macp.mode.task.v1"] });
    expect(await refusal(runtime, startEnvelope(sessionId(), "agent://a"), taskOnly)).toBe(
      ErrorCode.FORBIDDEN,
    );
    // Ambient signals carry no mode, so a mode allow-list does not block them.
    const signal = envelope({
      messageType: "Signal",
      sessionId: "",
      mode: "",
      sender: "agent://a",
    });
    await accepted(runtime, signal, taskOnly);
  });

  it("rate-limits per sender, consuming a slot even for refused envelopes", async () => {
    const { runtime, as, clock } = harness({
      limits: { messagesPerMinute: 2, sessionStartsPerMinute: 1 },
    });
    const alice = as("agent://alice");
    expect(await refusal(runtime, proposalEnvelope(sessionId(), "agent://alice"), alice)).toBe(
      ErrorCode.SESSION_NOT_FOUND,
    );
    expect(await refusal(runtime, proposalEnvelope(sessionId(), "agent://alice"), alice)).toBe(
      ErrorCode.SESSION_NOT_FOUND,
    );
    expect(await refusal(runtime, proposalEnvelope(sessionId(), "agent://alice"), alice)).toBe(
      ErrorCode.RATE_LIMITED,
    );
    // Other senders and the SessionStart budget are separate.
    await accepted(runtime, startEnvelope(sessionId(), "agent://alice"), alice);
    expect(await refusal(runtime, startEnvelope(sessionId(), "agent://alice"), alice)).toBe(
      ErrorCode.RATE_LIMITED,
    );
    await accepted(runtime, startEnvelope(sessionId(), "agent://bob"));
    clock.advance(60_001);
    await accepted(runtime, startEnvelope(sessionId(), "agent://alice"), alice);
  });

  it("refuses runtime-only message types sent by clients", async () => {
    const { runtime } = harness();
    const id = sessionId();
    await accepted(runtime, startEnvelope(id, "agent://a"));
    for (const messageType of ["SessionCancel", "SessionSuspend", "SessionResume", "TtlExpired"]) {
      expect(
        await refusal(runtime, envelope({ sessionId: id, sender: "agent://a", messageType })),
      ).toBe(ErrorCode.INVALID_ENVELOPE);
    }
  });
});

describe("SessionStart", () => {
  it("validates the session id format", async () => {
    const { runtime } = harness();
    const bad = [
      "00000000-0000-4000-8000-00000000000A", // uppercase
      "00000000-0000-1000-8000-000000000000", // v1
      "short-id",
      "has spaces in it which is not allowed!!",
    ];
    for (const id of bad) {
      expect(await refusal(runtime, startEnvelope(id, "agent://a"))).toBe(
        ErrorCode.INVALID_SESSION_ID,
      );
    }
    await accepted(runtime, startEnvelope("01ARZ3NDEKTSV4RRFFQ69G5FAV", "agent://a")); // ULID
    await accepted(runtime, startEnvelope("0190f1b4-9d2e-7c3a-8b4f-1a2b3c4d5e6f", "agent://a")); // v7
  });

  it("refuses unknown modes, then bad payloads", async () => {
    const { runtime } = harness();
    expect(
      await refusal(runtime, startEnvelope(sessionId(), "agent://a", { mode: "ext.unknown.v1" })),
    ).toBe(ErrorCode.MODE_NOT_SUPPORTED);
    const empty = envelope({
      messageType: "SessionStart",
      sessionId: sessionId(),
      payload: new Uint8Array(),
    });
    expect(await refusal(runtime, empty)).toBe(ErrorCode.INVALID_ENVELOPE);
    const garbage = envelope({
      messageType: "SessionStart",
      sessionId: sessionId(),
      payload: new Uint8Array([0xff, 0xff, 0xff]),
    });
    expect(await refusal(runtime, garbage)).toBe(ErrorCode.INVALID_ENVELOPE);
  });

  it("applies the strict checks of the built-in modes", async () => {
    const { runtime } = harness();
    const cases = [
      { ttlMs: 0 },
      { ttlMs: 86_400_001 },
      { modeVersion: " " },
      { configurationVersion: "" },
      { participants: [] },
      { participants: ["agent://a", " agent://a "] },
      { participants: ["agent://a", "  "] },
      { participants: Array.from({ length: 1001 }, (_, i) => `agent://${i}`) },
      { maxSuspendMs: -1 },
      { modeVersion: "2.0.0" },
    ];
    for (const options of cases) {
      expect(await refusal(runtime, startEnvelope(sessionId(), "agent://a", options))).toBe(
        ErrorCode.INVALID_ENVELOPE,
      );
    }
  });

  it("binds policy.default, and refuses unknown or mismatched policies", async () => {
    const { runtime, as } = harness();
    expect(
      await refusal(
        runtime,
        startEnvelope(sessionId(), "agent://a", { policyVersion: "policy.nope" }),
      ),
    ).toBe(ErrorCode.UNKNOWN_POLICY_VERSION);
    const registered = runtime.registerPolicy(
      {
        $typeName: "macp.v1.PolicyDescriptor",
        policyId: "policy.test.task-only",
        mode: "macp.mode.task.v1",
        description: "test",
        rules: "{}",
        schemaVersion: 1,
        registeredAtUnixMs: 0n,
      },
      as("agent://admin"),
    );
    expect(registered._unsafeUnwrap().ok).toBe(true);
    expect(
      await refusal(
        runtime,
        startEnvelope(sessionId(), "agent://a", { policyVersion: "policy.test.task-only" }),
      ),
    ).toBe(ErrorCode.INVALID_POLICY_DEFINITION);
    const id = sessionId();
    await accepted(runtime, startEnvelope(id, "agent://a"));
    expect((await runtime.getSession(id, as("agent://a")))._unsafeUnwrap().policyVersion).toBe(
      "policy.default",
    );
  });

  it("acks a retransmitted start as a duplicate and refuses a second start", async () => {
    const { runtime } = harness();
    const id = sessionId();
    const first = startEnvelope(id, "agent://a", { messageId: "s1" });
    await accepted(runtime, first);
    const again = await accepted(runtime, first);
    expect(again.duplicate).toBe(true);
    expect(again.sessionState).toBe(SessionState.OPEN);
    expect(await refusal(runtime, startEnvelope(id, "agent://a", { messageId: "s2" }))).toBe(
      ErrorCode.SESSION_ALREADY_EXISTS,
    );
  });

  it("caps open sessions per identity with RATE_LIMITED; suspended ones do not count", async () => {
    const { runtime } = harness();
    const capped = createIdentity({ sender: "agent://a", maxOpenSessions: 1 });
    const first = sessionId();
    await accepted(runtime, startEnvelope(first, "agent://a"), capped);
    expect(await refusal(runtime, startEnvelope(sessionId(), "agent://a"), capped)).toBe(
      ErrorCode.RATE_LIMITED,
    );
    (await runtime.suspendSession(first, "pause", capped))._unsafeUnwrap();
    await accepted(runtime, startEnvelope(sessionId(), "agent://a"), capped);
  });

  it("answers a failed append with INTERNAL_ERROR and leaves the id free", async () => {
    const { runtime, store } = harness();
    const id = sessionId();
    store.failAppends("disk full");
    expect(await refusal(runtime, startEnvelope(id, "agent://a"))).toBe(ErrorCode.INTERNAL_ERROR);
    store.failAppends(undefined);
    await accepted(runtime, startEnvelope(id, "agent://a"));
  });

  it("anchors the TTL on the start timestamp only within the allowed skew", async () => {
    const { runtime, as } = harness();
    const near = sessionId();
    await accepted(
      runtime,
      startEnvelope(near, "agent://a", { timestampUnixMs: BigInt(T0 - 1000) }),
    );
    const far = sessionId();
    await accepted(
      runtime,
      startEnvelope(far, "agent://a", { timestampUnixMs: BigInt(T0 + 10 * 86_400_000) }),
    );
    const nearMeta = (await runtime.getSession(near, as("agent://a")))._unsafeUnwrap();
    const farMeta = (await runtime.getSession(far, as("agent://a")))._unsafeUnwrap();
    expect(nearMeta.expiresAtUnixMs).toBe(BigInt(T0 - 1000 + 60_000));
    expect(farMeta.expiresAtUnixMs).toBe(BigInt(T0 + 60_000));
    expect(farMeta.startedAtUnixMs).toBe(BigInt(T0));
  });

  it("preserves context id and reports extension keys sorted", async () => {
    const { runtime, as } = harness();
    const id = sessionId();
    await accepted(
      runtime,
      startEnvelope(id, "agent://a", {
        contextId: "ctx-9",
        extensions: { zeta: new Uint8Array([1]), alpha: new Uint8Array([2]) },
      }),
    );
    const metadata = (await runtime.getSession(id, as("agent://a")))._unsafeUnwrap();
    expect(metadata.contextId).toBe("ctx-9");
    expect(metadata.extensionKeys).toEqual(["alpha", "zeta"]);
  });
});
