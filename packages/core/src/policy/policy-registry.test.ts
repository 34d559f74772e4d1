import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { PolicyDescriptorSchema } from "@macp/proto";
import { describe, expect, it } from "vitest";
import { builtInPolicyRules as builtInRules } from "../modes/mode-registry.js";
import { MAX_RULES_DEPTH, policyDescriptorOf } from "./policy-descriptor.js";
import { loadPolicyFile } from "./policy-file.js";
import { DEFAULT_POLICY, PolicyRegistry } from "./policy-registry.js";

const DECISION = "macp.mode.decision.v1";

function descriptor(overrides: MessageInitShape<typeof PolicyDescriptorSchema> = {}) {
  return create(PolicyDescriptorSchema, {
    policyId: "policy.test.majority",
    mode: DECISION,
    description: "majority",
    rules: JSON.stringify({ voting: { algorithm: "majority", threshold: 0.5 } }),
    schemaVersion: 1,
    ...overrides,
  });
}

function refusal(overrides: MessageInitShape<typeof PolicyDescriptorSchema>): string {
  const result = new PolicyRegistry(builtInRules).register(descriptor(overrides), 5);
  expect(result.isErr()).toBe(true);
  return result._unsafeUnwrapErr();
}

const rules = (value: unknown) => JSON.stringify(value);

describe("PolicyRegistry: the default policy", () => {
  it("is always present with the RFC fields and the explicit default rules", () => {
    const policy = new PolicyRegistry(builtInRules).get("policy.default");
    expect(policy).toEqual({
      policyId: "policy.default",
      mode: "*",
      description:
        "Default policy \u2014 mode built-in rules apply with no additional governance constraints",
      schemaVersion: 1,
      registeredAtUnixMs: 0,
      rules: {
        voting: { algorithm: "none", quorum: { type: "count", value: 0 } },
        objection_handling: { critical_severity_vetoes: false, veto_threshold: 1 },
        evaluation: { required_before_voting: false, minimum_confidence: 0 },
        commitment: {
          authority: "initiator_only",
          designated_roles: [],
          require_vote_quorum: false,
        },
      },
    });
    expect(Object.isFrozen(DEFAULT_POLICY.rules)).toBe(true);
  });

  it("can be neither registered nor unregistered", () => {
    expect(refusal({ policyId: "policy.default" })).toContain("reserved");
    const registry = new PolicyRegistry(builtInRules);
    expect(registry.unregister("policy.default").isErr()).toBe(true);
    expect(registry.get("policy.default")).toBe(DEFAULT_POLICY);
  });
});

describe("PolicyRegistry: registration checks in order", () => {
  it("refuses a blank policy_id", () => {
    expect(refusal({ policyId: "   " })).toContain("policy_id must not be blank");
  });

  it.each([0, 3, 7])("refuses schema_version %i", (schemaVersion) => {
    expect(refusal({ schemaVersion })).toContain("schema_version");
  });

  it("checks the id before the schema version, and both before the rules", () => {
    expect(refusal({ policyId: "", schemaVersion: 0 })).toContain("policy_id");
    expect(refusal({ policyId: "policy.default", rules: "{oops" })).toContain("reserved");
    expect(refusal({ schemaVersion: 5, rules: "[]" })).toContain("schema_version");
  });

  it("refuses unparseable rules JSON with INVALID_POLICY_DEFINITION", () => {
    const error = refusal({ rules: "{not json" });
    expect(error).toContain("INVALID_POLICY_DEFINITION");
    expect(error).toContain("not valid JSON");
  });

  it.each(["[]", "5", '"text"', "null"])("refuses non-object rules %s", (text) => {
    const error = refusal({ rules: text });
    expect(error).toContain("INVALID_POLICY_DEFINITION");
    expect(error).toContain("JSON object");
  });

  it("reads empty rules as {}", () => {
    const result = new PolicyRegistry(builtInRules).register(descriptor({ rules: "  " }), 1);
    expect(result._unsafeUnwrap().rules).toEqual({});
  });

  it.each([
    ["an unknown algorithm", { voting: { algorithm: "coin-flip" } }],
    ["a string threshold", { voting: { threshold: "0.5" } }],
    ["a threshold above 1", { voting: { threshold: 1.5 } }],
    ["a percentage quorum type typo", { voting: { quorum: { type: "percent" } } }],
    ["a negative weight", { voting: { algorithm: "weighted", weights: { a: -1 } } }],
    ["a zero veto_threshold", { objection_handling: { veto_threshold: 0 } }],
    ["a fractional veto_threshold", { objection_handling: { veto_threshold: 1.5 } }],
    [
      "an unknown critical_objection_action",
      { objection_handling: { critical_objection_action: "panic" } },
    ],
    ["a minimum_confidence above 1", { evaluation: { minimum_confidence: 2 } }],
    ["an unknown authority", { commitment: { authority: "anyone" } }],
    ["a non-boolean require_vote_quorum", { commitment: { require_vote_quorum: "yes" } }],
    ["a non-object section", { voting: 5 }],
  ])("refuses decision rules with %s", (_label, value) => {
    expect(refusal({ rules: rules(value) })).toContain("decision rules");
  });

  it("validates '*' policies against the decision schema", () => {
    expect(refusal({ mode: "*", rules: rules({ voting: { algorithm: "x" } }) })).toContain(
      "decision rules",
    );
  });

  it.each([
    ["macp.mode.proposal.v1", { acceptance: { criterion: "everyone" } }],
    ["macp.mode.proposal.v1", { counter_proposal: { max_rounds: -1 } }],
    ["macp.mode.proposal.v1", { rejection: { terminal_on_any_reject: 1 } }],
    ["macp.mode.task.v1", { completion: { require_output: "yes" } }],
    ["macp.mode.task.v1", { assignment: { allow_reassignment_on_reject: null } }],
    ["macp.mode.quorum.v1", { threshold: { type: "count", value: 2 } }],
    ["macp.mode.quorum.v1", { threshold: { value: 0.75 } }],
    ["macp.mode.quorum.v1", { abstention: { interpretation: "reject" } }],
    ["macp.mode.handoff.v1", { acceptance: { implicit_accept_timeout_ms: -5 } }],
    ["macp.mode.handoff.v1", { commitment: { require_vote_quorum: "yes" } }],
  ])("refuses %s rules %j", (mode, value) => {
    expect(refusal({ mode, rules: rules(value) })).toContain("INVALID_POLICY_DEFINITION");
  });

  it("refuses weighted voting without weights, or with none listed", () => {
    expect(refusal({ rules: rules({ voting: { algorithm: "weighted" } }) })).toContain("weights");
    expect(refusal({ rules: rules({ voting: { algorithm: "weighted", weights: {} } }) })).toContain(
      "weights",
    );
  });

  it("refuses supermajority at or below 0.5, including the default threshold", () => {
    expect(refusal({ rules: rules({ voting: { algorithm: "supermajority" } }) })).toContain(
      "threshold > 0.5",
    );
    expect(
      refusal({ rules: rules({ voting: { algorithm: "supermajority", threshold: 0.5 } }) }),
    ).toContain("INVALID_POLICY_DEFINITION");
  });

  it.each([DECISION, "macp.mode.task.v1", "macp.mode.handoff.v1", "ext.custom.v1"])(
    "refuses designated_role without roles for %s",
    (mode) => {
      const error = refusal({
        mode,
        rules: rules({ commitment: { authority: "designated_role" } }),
      });
      expect(error).toContain("designated_roles");
      const empty = { commitment: { authority: "designated_role", designated_roles: [] } };
      expect(refusal({ mode, rules: rules(empty) })).toContain("designated_roles");
    },
  );

  it("accepts any object for a mode without a rules schema", () => {
    const registry = new PolicyRegistry(builtInRules);
    const free = { anything: ["goes"], commitment: "not even an object" };
    expect(
      registry.register(descriptor({ mode: "ext.custom.v1", rules: rules(free) }), 1).isOk(),
    ).toBe(true);
  });

  it("accepts the spec's example policies", () => {
    const registry = new PolicyRegistry(builtInRules);
    const supermajority = {
      voting: { algorithm: "supermajority", threshold: 0.67, quorum: { type: "count", value: 3 } },
      objection_handling: { critical_severity_vetoes: true, veto_threshold: 1 },
      evaluation: { required_before_voting: true },
      commitment: { authority: "initiator_only", require_vote_quorum: true },
    };
    expect(
      registry.register(descriptor({ policyId: "p.a", rules: rules(supermajority) }), 1).isOk(),
    ).toBe(true);
    const decline = {
      voting: { algorithm: "majority" },
      objection_handling: { critical_objection_action: "finalize_decline" },
      commitment: { allow_decline_over_approval: false, designated_roles: [] },
    };
    expect(
      registry
        .register(descriptor({ policyId: "p.b", schemaVersion: 2, rules: rules(decline) }), 1)
        .isOk(),
    ).toBe(true);
    const task = { completion: { require_output: true } };
    expect(
      registry
        .register(descriptor({ policyId: "p.c", mode: "macp.mode.task.v1", rules: rules(task) }), 1)
        .isOk(),
    ).toBe(true);
  });

  it("refuses a duplicate id with 'already registered'", () => {
    const registry = new PolicyRegistry(builtInRules);
    expect(registry.register(descriptor(), 1).isOk()).toBe(true);
    expect(registry.register(descriptor(), 2)._unsafeUnwrapErr()).toContain("already registered");
  });

  it("stamps the registration time and keeps a frozen copy of the rules", () => {
    const registry = new PolicyRegistry(builtInRules);
    const policy = registry
      .register(descriptor({ registeredAtUnixMs: 99n }), 1_234)
      ._unsafeUnwrap();
    expect(policy.registeredAtUnixMs).toBe(1_234);
    expect(Object.isFrozen(policy.rules)).toBe(true);
    expect(Object.isFrozen(policy.rules.voting)).toBe(true);
    expect(registry.get(policy.policyId)).toBe(policy);
  });
});

describe("PolicyRegistry: unregister, get, list", () => {
  it("refuses an unknown id and removes a registered one", () => {
    const registry = new PolicyRegistry(builtInRules);
    expect(registry.unregister("policy.nope")._unsafeUnwrapErr()).toContain("not found");
    registry.register(descriptor(), 1);
    expect(registry.unregister("policy.test.majority").isOk()).toBe(true);
    expect(registry.get("policy.test.majority")).toBeUndefined();
  });

  it("lists by mode (with '*' policies) or all, sorted by id", () => {
    const registry = new PolicyRegistry(builtInRules);
    registry.register(
      descriptor({ policyId: "policy.z.task", mode: "macp.mode.task.v1", rules: "{}" }),
      1,
    );
    registry.register(descriptor({ policyId: "policy.a.any", mode: "*", rules: "{}" }), 1);
    registry.register(descriptor({ policyId: "policy.m.decision" }), 1);
    const ids = (list: { policyId: string }[]) => list.map((policy) => policy.policyId);
    expect(ids(registry.list(""))).toEqual([
      "policy.a.any",
      "policy.default",
      "policy.m.decision",
      "policy.z.task",
    ]);
    expect(ids(registry.all())).toEqual(ids(registry.list("")));
    expect(ids(registry.list("macp.mode.task.v1"))).toEqual([
      "policy.a.any",
      "policy.default",
      "policy.z.task",
    ]);
  });
});

describe("PolicyRegistry.resolveForSession (modes.md §9.6)", () => {
  const registry = new PolicyRegistry(builtInRules);
  registry.register(descriptor(), 1);

  it("binds the default policy for an empty version", () => {
    expect(registry.resolveForSession("", "macp.mode.task.v1")._unsafeUnwrap()).toBe(
      DEFAULT_POLICY,
    );
  });

  it("refuses an unknown version with UNKNOWN_POLICY_VERSION", () => {
    const error = registry
      .resolveForSession("policy.nonexistent.v999", DECISION)
      ._unsafeUnwrapErr();
    expect(error.code).toBe("UNKNOWN_POLICY_VERSION");
  });

  it("refuses a policy for another mode with INVALID_POLICY_DEFINITION", () => {
    const error = registry
      .resolveForSession("policy.test.majority", "macp.mode.quorum.v1")
      ._unsafeUnwrapErr();
    expect(error.code).toBe("INVALID_POLICY_DEFINITION");
  });

  it("binds a policy for the same mode", () => {
    expect(
      registry.resolveForSession("policy.test.majority", DECISION)._unsafeUnwrap().policyId,
    ).toBe("policy.test.majority");
  });
});

describe("policy descriptors and files", () => {
  it("converts a definition to a descriptor with JSON rules", () => {
    const policy = new PolicyRegistry(builtInRules).register(descriptor(), 42)._unsafeUnwrap();
    const wire = policyDescriptorOf(policy);
    expect(wire).toMatchObject({
      policyId: "policy.test.majority",
      mode: DECISION,
      description: "majority",
      schemaVersion: 1,
      registeredAtUnixMs: 42n,
    });
    expect(JSON.parse(wire.rules)).toEqual({ voting: { algorithm: "majority", threshold: 0.5 } });
  });

  const file = {
    policy_id: "policy.test.filepolicy",
    mode: DECISION,
    description: "from a file",
    rules: { commitment: { authority: "initiator_only" } },
    schema_version: 1,
  };

  it("loads a valid policy file", () => {
    const policy = loadPolicyFile(file, builtInRules)._unsafeUnwrap();
    expect(policy).toMatchObject({ policyId: "policy.test.filepolicy", schemaVersion: 1 });
    const registry = new PolicyRegistry(builtInRules);
    expect(registry.registerDefinition(policy, 7)._unsafeUnwrap().registeredAtUnixMs).toBe(7);
    expect(registry.registerDefinition(policy, 8)._unsafeUnwrapErr()).toContain(
      "already registered",
    );
  });

  it("refuses a document that is not an object", () => {
    expect(loadPolicyFile([file])._unsafeUnwrapErr().code).toBe("INVALID_POLICY_DEFINITION");
  });

  it.each(["policy_id", "mode", "description", "rules", "schema_version"])(
    "refuses a file without %s",
    (key) => {
      const { [key as keyof typeof file]: _dropped, ...rest } = file;
      const error = loadPolicyFile(rest)._unsafeUnwrapErr();
      expect(error.code).toBe("INVALID_POLICY_DEFINITION");
      expect(error.message).toContain(key);
    },
  );

  it.each([
    ["rules as a string", { rules: "{}" }],
    ["a numeric description", { description: 5 }],
    ["a fractional schema_version", { schema_version: 1.5 }],
    ["an unsupported schema_version", { schema_version: 3 }],
    ["the reserved id", { policy_id: "policy.default" }],
    ["rules failing the schema", { rules: { voting: { algorithm: "coin" } } }],
  ])("refuses %s", (_label, overrides) => {
    expect(loadPolicyFile({ ...file, ...overrides }, builtInRules)._unsafeUnwrapErr().code).toBe(
      "INVALID_POLICY_DEFINITION",
    );
  });
});

describe("policy files without the modes' rules checks", () => {
  it("run only the shared checks; the registry still applies the mode's own", () => {
    const file = {
      policy_id: "policy.test.coin",
      mode: DECISION,
      description: "",
      rules: { voting: { algorithm: "coin" } },
      schema_version: 1,
    };
    const policy = loadPolicyFile(file)._unsafeUnwrap();
    expect(
      new PolicyRegistry(builtInRules).registerDefinition(policy, 1)._unsafeUnwrapErr(),
    ).toContain("decision rules schema");
    const roles = { ...file, rules: { commitment: { authority: "designated_role" } } };
    expect(loadPolicyFile(roles)._unsafeUnwrapErr().message).toContain("designated_roles");
  });
});

/** `{"voting": {"n": {"n": … 1}}}` with the rules object itself at depth 1. */
function nestedRulesText(depth: number): string {
  return `{"voting":${'{"n":'.repeat(depth - 1)}1${"}".repeat(depth - 1)}}`;
}

describe("deeply nested rules (regression: 3,000 levels overflowed the stack, answered INTERNAL)", () => {
  it.each([DECISION, "ext.custom.v1"])(
    "refuses 3,000 levels with INVALID_POLICY_DEFINITION for %s",
    (mode) => {
      const text = nestedRulesText(3000);
      expect(refusal({ mode, rules: text })).toBe(
        `INVALID_POLICY_DEFINITION: rules nest deeper than ${MAX_RULES_DEPTH} levels`,
      );
    },
  );

  it("refuses deep arrays as well as deep objects, and 100,000 levels as cheaply", () => {
    const arrays = `{"commitment":{"designated_roles":${"[".repeat(5000)}${"]".repeat(5000)}}}`;
    expect(refusal({ rules: arrays })).toContain("nest deeper than");
    expect(refusal({ rules: nestedRulesText(100_000) })).toContain("nest deeper than");
  });

  it("accepts exactly the maximum depth and refuses one level more", () => {
    const registry = new PolicyRegistry(builtInRules);
    const deepest = descriptor({ mode: "ext.custom.v1", rules: nestedRulesText(MAX_RULES_DEPTH) });
    expect(registry.register(deepest, 1).isOk()).toBe(true);
    expect(
      refusal({ mode: "ext.custom.v1", rules: nestedRulesText(MAX_RULES_DEPTH + 1) }),
    ).toContain("nest deeper than");
  });

  it("refuses a deeply nested policy file", () => {
    const rules = JSON.parse(nestedRulesText(3000)) as unknown;
    const error = loadPolicyFile({
      policy_id: "policy.test.deep",
      mode: DECISION,
      description: "deep",
      rules,
      schema_version: 1,
    })._unsafeUnwrapErr();
    expect(error.code).toBe("INVALID_POLICY_DEFINITION");
    expect(error.message).toContain("nest deeper than");
  });
});
