import { create } from "@bufbuild/protobuf";
import { ModeDescriptorSchema } from "@macp/proto";
import { describe, expect, it } from "vitest";
import { commitment, ModeDriver, outcome, session, withPolicy } from "../mode-test-support.js";
import { createPassthroughMode } from "./passthrough-mode.js";

const descriptor = create(ModeDescriptorSchema, {
  mode: "ext.test.custom.v1",
  modeVersion: "1.0.0",
  messageTypes: ["SessionStart", "Ping", "Pong", "Commitment"],
  terminalMessageTypes: ["Commitment"],
});
const handler = createPassthroughMode(descriptor);
const OWNER = "agent://owner";
const PEER = "agent://peer";
const view = session({ mode: "ext.test.custom.v1", initiator: OWNER, participants: [PEER] });
const bytes = (...values: number[]) => new Uint8Array(values);

describe("passthrough mode", () => {
  it("starts with empty bytes as state", () => {
    const d = new ModeDriver(handler, view);
    expect(handler.encodeState(d.state)).toEqual(new Uint8Array());
  });

  it("rejects types outside the descriptor, SessionStart included", () => {
    const d = new ModeDriver(handler, view);
    expect(outcome(d.send("Zap", PEER, bytes(1)))).toBe("INVALID_ENVELOPE");
    expect(outcome(d.send("SessionStart", PEER, bytes(1)))).toBe("INVALID_ENVELOPE");
  });

  it("overwrites the state with the raw payload of each allowed message", () => {
    const d = new ModeDriver(handler, view);
    expect(outcome(d.send("Ping", PEER, bytes(1, 2)))).toBe("ok");
    expect(outcome(d.send("Pong", PEER, bytes(3)))).toBe("ok");
    expect(handler.encodeState(d.state)).toEqual(bytes(3));
  });

  it("admits only declared participants, or anyone when none are declared", () => {
    const d = new ModeDriver(handler, view);
    expect(outcome(d.send("Ping", "agent://stranger", bytes(1)))).toBe("FORBIDDEN");
    const open = new ModeDriver(handler, { ...view, participants: [] });
    expect(outcome(open.send("Ping", "agent://stranger", bytes(1)))).toBe("ok");
  });

  it("lets only the initiator commit, whatever the policy says", () => {
    const permissive = withPolicy(view, { commitment: { authority: "any_participant" } });
    const d = new ModeDriver(handler, permissive);
    expect(outcome(d.send("Commitment", PEER, commitment(permissive)))).toBe("FORBIDDEN");
  });

  it("validates the Commitment and resolves with JSON, keeping the last payload as state", () => {
    const d = new ModeDriver(handler, view);
    d.send("Ping", PEER, bytes(7));
    const bad = commitment(view, { reason: "" });
    expect(outcome(d.send("Commitment", OWNER, bad))).toBe("INVALID_ENVELOPE");
    const good = commitment(view, { action: "custom.done", commitmentId: "c-9" });
    expect(outcome(d.send("Commitment", OWNER, good))).toBe("ok");
    expect(new TextDecoder().decode(d.resolution)).toBe(
      '{"action":"custom.done","commitment_id":"c-9"}',
    );
    expect(handler.encodeState(d.state)).toEqual(bytes(7));
  });
});
