import { multiRound } from "@macp/proto";
import { describe, expect, it } from "vitest";
import {
  commitment,
  encode,
  ModeDriver,
  outcome,
  session,
  startPayload,
  withPolicy,
} from "../mode-test-support.js";
import { type MultiRoundState, multiRoundMode, parseContribution } from "./multi-round-mode.js";

const COORD = "agent://coordinator";
const ALICE = "agent://alice";
const BOB = "agent://bob";
const view = session({ mode: "ext.multi_round.v1", initiator: COORD, participants: [ALICE, BOB] });

const proto = (value: string) => encode(multiRound.ContributePayloadSchema, { value });
const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

function driver(sessionView = view): ModeDriver<MultiRoundState> {
  return new ModeDriver(multiRoundMode, sessionView);
}

describe("multi-round mode", () => {
  it("rejects a session without participants and starts with a copy of them", () => {
    const empty = session({ participants: [] });
    expect(outcome(multiRoundMode.onSessionStart(empty, startPayload(empty)))).toBe(
      "INVALID_ENVELOPE",
    );
    expect(driver().text()).toBe(
      '{"round":0,"participants":["agent://alice","agent://bob"],"contributions":{},"convergence_type":"all_equal","converged":false}',
    );
  });

  it("leaves the round unchanged when the same value is sent again, and counts changes", () => {
    const d = driver();
    d.send("Contribute", ALICE, proto("option_a"));
    expect(d.state.round).toBe(1);
    d.send("Contribute", ALICE, proto("option_a"));
    expect(d.state.round).toBe(1);
    d.send("Contribute", ALICE, proto("option_b"));
    expect(d.state.round).toBe(2);
  });

  it("treats JSON and protobuf contributions alike, JSON first, extra fields ignored", () => {
    expect(parseContribution(json({ value: "x", note: 1 }))._unsafeUnwrap()).toBe("x");
    expect(parseContribution(proto("x"))._unsafeUnwrap()).toBe("x");
    const d = driver();
    d.send("Contribute", ALICE, json({ value: "same" }));
    d.send("Contribute", BOB, proto("same"));
    expect(d.state.converged).toBe(true);
    expect(d.state.round).toBe(2);
  });

  it("rejects an empty payload and bytes that are neither form", () => {
    const d = driver();
    expect(outcome(d.send("Contribute", ALICE, new Uint8Array()))).toBe("INVALID_ENVELOPE");
    expect(outcome(d.send("Contribute", ALICE, json({ value: 5 })))).toBe("INVALID_ENVELOPE");
    expect(outcome(d.send("Contribute", ALICE, new Uint8Array([0x0a, 0x05, 0x41])))).toBe(
      "INVALID_ENVELOPE",
    );
  });

  it("refuses contributions after convergence", () => {
    const d = driver();
    d.send("Contribute", ALICE, proto("a"));
    d.send("Contribute", BOB, proto("a"));
    expect(outcome(d.send("Contribute", BOB, proto("b")))).toBe("INVALID_ENVELOPE");
  });

  it("refuses outsiders and unknown types", () => {
    const d = driver();
    expect(outcome(d.send("Contribute", "agent://outsider", proto("a")))).toBe("FORBIDDEN");
    expect(outcome(d.send("Vote", ALICE, proto("a")))).toBe("INVALID_ENVELOPE");
  });

  it("multi_round_reject_paths: readiness first, then authority beats readiness", () => {
    const d = driver();
    const commit = commitment(view, { action: "multi_round.converged" });
    expect(outcome(d.send("Commitment", COORD, commit))).toBe("INVALID_ENVELOPE");
    expect(outcome(d.send("Contribute", ALICE, proto("option_a")))).toBe("ok");
    expect(outcome(d.send("Contribute", BOB, proto("option_a")))).toBe("ok");
    expect(d.state).toMatchObject({ converged: true, round: 2 });
    expect(outcome(d.send("Commitment", ALICE, commit))).toBe("FORBIDDEN");
    expect(d.resolution).toBeUndefined();
  });

  it("checks readiness before the payload", () => {
    expect(outcome(driver().send("Commitment", COORD, new Uint8Array([0xff])))).toBe(
      "INVALID_ENVELOPE",
    );
    const d = driver();
    d.send("Contribute", ALICE, proto("a"));
    d.send("Contribute", BOB, proto("a"));
    const bad = commitment(view, { modeVersion: "2.0.0" });
    expect(outcome(d.send("Commitment", COORD, bad))).toBe("INVALID_ENVELOPE");
  });

  it("ignores the policy's commitment authority", () => {
    const open = withPolicy(view, { commitment: { authority: "any_participant" } });
    const d = driver(open);
    d.send("Contribute", ALICE, proto("a"));
    d.send("Contribute", BOB, proto("a"));
    expect(outcome(d.send("Commitment", ALICE, commitment(open)))).toBe("FORBIDDEN");
  });

  it("multi_round_happy_path: converges at round 3 and resolves with JSON", () => {
    const d = driver();
    d.send("Contribute", ALICE, proto("option_a"));
    d.send("Contribute", BOB, proto("option_b"));
    expect(d.state.converged).toBe(false);
    d.send("Contribute", BOB, proto("option_a"));
    expect(d.text()).toBe(
      '{"round":3,"participants":["agent://alice","agent://bob"],"contributions":{"agent://alice":"option_a","agent://bob":"option_a"},"convergence_type":"all_equal","converged":true}',
    );
    const before = d.state;
    const commit = commitment(view, { action: "multi_round.converged" });
    expect(outcome(d.send("Commitment", COORD, commit))).toBe("ok");
    expect(d.state).toBe(before);
    expect(new TextDecoder().decode(d.resolution)).toBe(
      '{"converged_value":"option_a","round":3,"final":{"agent://alice":"option_a","agent://bob":"option_a"}}',
    );
  });
});
