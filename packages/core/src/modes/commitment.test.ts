import { CommitmentPayloadSchema } from "@macp/proto";
import { describe, expect, it } from "vitest";
import {
  checkCommitmentAuthority,
  isCommitmentAuthority,
  requiredOutcomeForAction,
  validateCommitmentPayload,
} from "./commitment.js";
import { commitment, encode, outcome, session, withPolicy } from "./mode-test-support.js";

const view = session();

describe("validateCommitmentPayload (CMT-1..CMT-6)", () => {
  it("rejects bytes that are not a CommitmentPayload", () => {
    expect(outcome(validateCommitmentPayload(view, new Uint8Array([0x0a, 0x05, 0x41])))).toBe(
      "INVALID_ENVELOPE",
    );
  });

  it.each([["commitmentId"], ["action"], ["authorityScope"], ["reason"]] as const)(
    "rejects a blank %s",
    (field) => {
      expect(outcome(validateCommitmentPayload(view, commitment(view, { [field]: "  " })))).toBe(
        "INVALID_ENVELOPE",
      );
    },
  );

  it("rejects a mode_version that is not the session's", () => {
    const payload = commitment(view, { modeVersion: "1.0.1" });
    expect(outcome(validateCommitmentPayload(view, payload))).toBe("INVALID_ENVELOPE");
  });

  it("rejects a configuration_version that is not the session's", () => {
    const payload = commitment(view, { configurationVersion: "cfg-2" });
    expect(outcome(validateCommitmentPayload(view, payload))).toBe("INVALID_ENVELOPE");
  });

  it("rejects a policy_version that is neither empty nor the resolved id", () => {
    const payload = commitment(view, { policyVersion: "policy.other" });
    expect(outcome(validateCommitmentPayload(view, payload))).toBe("INVALID_ENVELOPE");
  });

  it("accepts an empty policy_version or the resolved id", () => {
    expect(outcome(validateCommitmentPayload(view, commitment(view, { policyVersion: "" })))).toBe(
      "ok",
    );
    const explicit = commitment(view, { policyVersion: "policy.default" });
    expect(outcome(validateCommitmentPayload(view, explicit))).toBe("ok");
  });

  it("accepts any policy_version when the session recorded none (old replays)", () => {
    const legacy = { ...view, policyVersion: "" };
    const payload = commitment(legacy, { policyVersion: "policy.anything" });
    expect(outcome(validateCommitmentPayload(legacy, payload))).toBe("ok");
  });

  it("rejects a supersedes reference with a blank field, accepts a complete one", () => {
    const blankHash = commitment(view, { supersedes: { sessionId: "s0", commitmentHash: " " } });
    expect(outcome(validateCommitmentPayload(view, blankHash))).toBe("INVALID_ENVELOPE");
    const blankSession = commitment(view, { supersedes: { sessionId: "", commitmentHash: "h" } });
    expect(outcome(validateCommitmentPayload(view, blankSession))).toBe("INVALID_ENVELOPE");
    const complete = commitment(view, { supersedes: { sessionId: "s0", commitmentHash: "x" } });
    expect(outcome(validateCommitmentPayload(view, complete))).toBe("ok");
  });

  it.each([
    ["decision.rejected", true],
    ["task.failed", true],
    ["handoff.declined", true],
    ["decision.selected", false],
    ["proposal.accepted", false],
    ["task.completed", false],
    ["quorum.approved", false],
  ])("rejects %s with outcome_positive=%s", (action, outcomePositive) => {
    const payload = commitment(view, { action, outcomePositive });
    expect(outcome(validateCommitmentPayload(view, payload))).toBe("INVALID_ENVELOPE");
  });

  it("leaves other actions unconstrained", () => {
    for (const outcomePositive of [true, false]) {
      const payload = commitment(view, { action: "multi_round.converged", outcomePositive });
      expect(outcome(validateCommitmentPayload(view, payload))).toBe("ok");
    }
  });

  it("rejects an omitted outcome_positive with a positive action (proto3 reads it as false)", () => {
    const payload = encode(CommitmentPayloadSchema, {
      commitmentId: "c1",
      action: "decision.selected",
      authorityScope: "s",
      reason: "r",
      modeVersion: "1.0.0",
      configurationVersion: "cfg-1",
    });
    expect(outcome(validateCommitmentPayload(view, payload))).toBe("INVALID_ENVELOPE");
  });

  it("uses a plain suffix test", () => {
    expect(requiredOutcomeForAction("foo.unaccepted")).toBe(true);
    expect(requiredOutcomeForAction("transfer.review")).toBeUndefined();
    expect(requiredOutcomeForAction("x.failed")).toBe(false);
  });

  it("returns the decoded payload when valid", () => {
    const result = validateCommitmentPayload(view, commitment(view, { commitmentId: "abc" }));
    expect(result._unsafeUnwrap().commitmentId).toBe("abc");
  });
});

describe("commitment authority (modes.md §0.5)", () => {
  const base = session({
    initiator: "agent://boss",
    participants: ["agent://a", "agent://b"],
  });

  it("defaults to initiator_only, even for an initiator outside the participants", () => {
    expect(isCommitmentAuthority(base, "agent://boss")).toBe(true);
    expect(isCommitmentAuthority(base, "agent://a")).toBe(false);
    expect(outcome(checkCommitmentAuthority(base, "agent://a"))).toBe("FORBIDDEN");
  });

  it("treats an unknown authority as initiator_only", () => {
    const view = withPolicy(base, { commitment: { authority: "everyone" } });
    expect(isCommitmentAuthority(view, "agent://boss")).toBe(true);
    expect(isCommitmentAuthority(view, "agent://a")).toBe(false);
  });

  it("falls back to initiator_only when the commitment rules cannot be read", () => {
    const view = withPolicy(base, { commitment: { authority: 7 } });
    expect(isCommitmentAuthority(view, "agent://boss")).toBe(true);
    const anyParticipant = withPolicy(base, {
      commitment: { authority: "any_participant", designated_roles: "agent://a" },
    });
    expect(isCommitmentAuthority(anyParticipant, "agent://a")).toBe(false);
  });

  it("any_participant admits the initiator and every declared participant", () => {
    const view = withPolicy(base, { commitment: { authority: "any_participant" } });
    expect(isCommitmentAuthority(view, "agent://boss")).toBe(true);
    expect(isCommitmentAuthority(view, "agent://b")).toBe(true);
    expect(isCommitmentAuthority(view, "agent://outsider")).toBe(false);
  });

  it("designated_role admits only the listed ids, not the initiator", () => {
    const view = withPolicy(base, {
      commitment: { authority: "designated_role", designated_roles: ["agent://b", "agent://x"] },
    });
    expect(isCommitmentAuthority(view, "agent://b")).toBe(true);
    expect(isCommitmentAuthority(view, "agent://x")).toBe(true);
    expect(isCommitmentAuthority(view, "agent://boss")).toBe(false);
    expect(isCommitmentAuthority(view, "agent://a")).toBe(false);
  });
});
