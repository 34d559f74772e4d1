import { describe, expect, it } from "vitest";
import type { JsonObject } from "../../json.js";
import type { PolicyDefinition } from "../../policy/policy-definition.js";
import { evaluateHandoffPolicy } from "./handoff-evaluator.js";

function policy(rules: JsonObject, schemaVersion = 1): PolicyDefinition {
  return {
    policyId: "policy.test",
    mode: "*",
    description: "",
    rules,
    schemaVersion,
    registeredAtUnixMs: 0,
  };
}

describe("handoff evaluator", () => {
  it("allows after the frame, and denies on a bad frame", () => {
    const input = { outcomePositive: true };
    expect(
      evaluateHandoffPolicy(policy({ acceptance: { implicit_accept_timeout_ms: 5 } }), input)
        .allowed,
    ).toBe(true);
    expect(evaluateHandoffPolicy(policy({}, 3), input).allowed).toBe(false);
    expect(
      evaluateHandoffPolicy(policy({ acceptance: { implicit_accept_timeout_ms: -1 } }), input)
        .allowed,
    ).toBe(false);
  });
});
