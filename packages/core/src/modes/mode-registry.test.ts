import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { ModeDescriptorSchema } from "@macp/proto";
import { describe, expect, it } from "vitest";
import { builtInModes } from "./built-in-modes.js";
import { ModeRegistry } from "./mode-registry.js";
import { commitment, ModeDriver, outcome, session } from "./mode-test-support.js";

const STANDARD = [
  "macp.mode.decision.v1",
  "macp.mode.proposal.v1",
  "macp.mode.task.v1",
  "macp.mode.handoff.v1",
  "macp.mode.quorum.v1",
];

function extension(overrides: MessageInitShape<typeof ModeDescriptorSchema> = {}) {
  return create(ModeDescriptorSchema, {
    mode: "ext.test.custom.v1",
    modeVersion: "1.0.0",
    messageTypes: ["Ping", "Pong", "Commitment"],
    terminalMessageTypes: ["Commitment"],
    ...overrides,
  });
}

describe("built-in modes", () => {
  const entries = builtInModes();

  it("has the six descriptors of modes.md §1.1", () => {
    expect(entries.map((entry) => entry.descriptor.mode)).toEqual([
      ...STANDARD,
      "ext.multi_round.v1",
    ]);
    const table = entries.map(({ descriptor }) => [
      descriptor.title,
      descriptor.determinismClass,
      descriptor.participantModel,
      descriptor.messageTypes.join(","),
    ]);
    expect(table).toEqual([
      [
        "Decision Mode",
        "semantic-deterministic",
        "declared",
        "SessionStart,Proposal,Evaluation,Objection,Vote,Commitment",
      ],
      [
        "Proposal Mode",
        "semantic-deterministic",
        "peer",
        "SessionStart,Proposal,CounterProposal,Accept,Reject,Withdraw,Commitment",
      ],
      [
        "Task Mode",
        "structural-only",
        "orchestrated",
        "SessionStart,TaskRequest,TaskAccept,TaskReject,TaskUpdate,TaskComplete,TaskFail,Commitment",
      ],
      [
        "Handoff Mode",
        "context-frozen",
        "delegated",
        "SessionStart,HandoffOffer,HandoffContext,HandoffAccept,HandoffDecline,Commitment",
      ],
      [
        "Quorum Mode",
        "semantic-deterministic",
        "quorum",
        "SessionStart,ApprovalRequest,Approve,Reject,Abstain,Commitment",
      ],
      ["Multi-Round Mode", "semantic-deterministic", "peer", "SessionStart,Contribute,Commitment"],
    ]);
  });

  it("advertises version 1.0.0, Commitment as terminal and both schema uri keys", () => {
    for (const { descriptor } of entries) {
      expect(descriptor.modeVersion).toBe("1.0.0");
      expect(descriptor.terminalMessageTypes).toEqual(["Commitment"]);
      expect(descriptor.description.length).toBeGreaterThan(20);
      expect(descriptor.schemaUris).toEqual({
        proto: "buf.build/multiagentcoordinationprotocol/macp",
        protobuf: "buf.build/multiagentcoordinationprotocol/macp",
      });
    }
  });

  it("marks all six built in and strict, and only the macp.mode.* ones standards-track", () => {
    for (const entry of entries) {
      expect(entry.builtIn).toBe(true);
      expect(entry.strict).toBe(true);
      expect(entry.standardsTrack).toBe(entry.descriptor.mode.startsWith("macp.mode."));
    }
  });
});

describe("ModeRegistry: listings", () => {
  it("lists standards in the fixed order, extensions and names sorted", () => {
    const registry = new ModeRegistry();
    expect(registry.listStandards().map((d) => d.mode)).toEqual(STANDARD);
    expect(registry.listExtensions().map((d) => d.mode)).toEqual(["ext.multi_round.v1"]);
    expect(registry.allNames()).toEqual([
      "ext.multi_round.v1",
      "macp.mode.decision.v1",
      "macp.mode.handoff.v1",
      "macp.mode.proposal.v1",
      "macp.mode.quorum.v1",
      "macp.mode.task.v1",
    ]);
  });

  it("hands out copies, so callers cannot change registered descriptors", () => {
    const registry = new ModeRegistry();
    const [first] = registry.listStandards();
    if (first === undefined) throw new Error("expected a descriptor");
    first.title = "Hacked";
    expect(registry.listStandards()[0]?.title).toBe("Decision Mode");
  });
});

describe("ModeRegistry: register", () => {
  const refusals: [string, MessageInitShape<typeof ModeDescriptorSchema>, string][] = [
    ["a blank mode", { mode: "  " }, "blank"],
    ["the reserved namespace", { mode: "macp.mode.custom.v1" }, "reserved"],
    ["no message types", { messageTypes: [] }, "message_types"],
    ["a blank mode_version", { modeVersion: " " }, "mode_version"],
    ["no terminal types", { terminalMessageTypes: [] }, "terminal_message_types"],
    ["a terminal other than Commitment", { terminalMessageTypes: ["Pong"] }, "only Commitment"],
    ["a terminal missing from message_types", { messageTypes: ["Ping"] }, "missing"],
  ];

  it.each(refusals)("refuses %s", (_label, overrides, text) => {
    const result = new ModeRegistry().register(extension(overrides));
    expect(result.ok).toBe(false);
    expect(result.error).toContain(text);
  });

  it("refuses a name that is already registered, built-ins included", () => {
    const registry = new ModeRegistry();
    expect(registry.register(extension()).ok).toBe(true);
    expect(registry.register(extension()).error).toContain("already registered");
    expect(registry.register(extension({ mode: "ext.multi_round.v1" })).ok).toBe(false);
  });

  it("backs a registered extension with a non-strict passthrough handler", () => {
    const registry = new ModeRegistry();
    const descriptor = extension();
    registry.register(descriptor);
    descriptor.messageTypes.push("Zap");
    const entry = registry.get("ext.test.custom.v1");
    if (entry === undefined) throw new Error("expected the entry");
    expect(entry).toMatchObject({ strict: false, standardsTrack: false, builtIn: false });
    expect(entry.descriptor.messageTypes).toEqual(["Ping", "Pong", "Commitment"]);
    const view = session({ mode: "ext.test.custom.v1", initiator: "agent://o", participants: [] });
    const d = new ModeDriver(entry.handler, view);
    expect(outcome(d.send("Ping", "agent://x", new Uint8Array([1])))).toBe("ok");
    expect(outcome(d.send("Zap", "agent://x", new Uint8Array([1])))).toBe("INVALID_ENVELOPE");
    expect(outcome(d.send("Commitment", "agent://o", commitment(view)))).toBe("ok");
    expect(registry.listExtensions().map((d) => d.mode)).toEqual([
      "ext.multi_round.v1",
      "ext.test.custom.v1",
    ]);
  });
});

describe("ModeRegistry: unregister", () => {
  it("refuses unknown, built-in and standards-track modes", () => {
    const registry = new ModeRegistry();
    expect(registry.unregister("ext.nope.v1").error).toContain("not found");
    expect(registry.unregister("ext.multi_round.v1").error).toContain("built in");
    expect(registry.unregister("macp.mode.decision.v1").ok).toBe(false);
    registry.register(extension());
    registry.promote("ext.test.custom.v1");
    expect(registry.unregister("ext.test.custom.v1").error).toContain("standards-track");
  });

  it("removes a dynamic extension", () => {
    const registry = new ModeRegistry();
    registry.register(extension());
    expect(registry.unregister("ext.test.custom.v1")).toEqual({ ok: true, error: "" });
    expect(registry.get("ext.test.custom.v1")).toBeUndefined();
  });
});

describe("ModeRegistry: promote", () => {
  it("refuses unknown and already standards-track modes", () => {
    const registry = new ModeRegistry();
    expect(registry.promote("ext.nope.v1")).toMatchObject({ ok: false, mode: "" });
    expect(registry.promote("macp.mode.task.v1").error).toContain("already standards-track");
  });

  it("refuses a rename into the reserved namespace, a blank name or a taken name", () => {
    const registry = new ModeRegistry();
    registry.register(extension());
    expect(registry.promote("ext.test.custom.v1", "macp.mode.promotable.v1").error).toContain(
      "reserved",
    );
    expect(registry.promote("ext.test.custom.v1", "   ").ok).toBe(false);
    expect(registry.promote("ext.test.custom.v1", "ext.multi_round.v1").error).toContain(
      "already registered",
    );
  });

  it("with an empty name keeps the name and makes the mode standards-track and strict", () => {
    const registry = new ModeRegistry();
    registry.register(extension({ mode: "ext.test.promotable.v1" }));
    expect(registry.promote("ext.test.promotable.v1", "")).toEqual({
      ok: true,
      error: "",
      mode: "ext.test.promotable.v1",
    });
    expect(registry.get("ext.test.promotable.v1")).toMatchObject({
      strict: true,
      standardsTrack: true,
    });
    expect(registry.listStandards().map((d) => d.mode)).toEqual([
      ...STANDARD,
      "ext.test.promotable.v1",
    ]);
    expect(registry.listExtensions().map((d) => d.mode)).toEqual(["ext.multi_round.v1"]);
  });

  it("renames, with the descriptor following the key, and sorts promoted modes", () => {
    const registry = new ModeRegistry();
    registry.register(extension({ mode: "ext.b.v1" }));
    registry.promote("ext.b.v1", "std.zeta.v1");
    const multiRound = registry.get("ext.multi_round.v1")?.handler;
    expect(registry.promote("ext.multi_round.v1", "std.alpha.v1").ok).toBe(true);
    expect(registry.get("ext.b.v1")).toBeUndefined();
    expect(registry.get("std.zeta.v1")?.descriptor.mode).toBe("std.zeta.v1");
    expect(registry.get("std.alpha.v1")?.handler).toBe(multiRound);
    expect(registry.listStandards().map((d) => d.mode)).toEqual([
      ...STANDARD,
      "std.alpha.v1",
      "std.zeta.v1",
    ]);
    expect(registry.listExtensions()).toEqual([]);
  });
});
