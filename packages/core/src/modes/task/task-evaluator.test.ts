import { describe, expect, it } from "vitest";
import type { JsonObject } from "../../json.js";
import type { PolicyDefinition } from "../../policy/policy-definition.js";
import { evaluateTaskPolicy } from "./task-evaluator.js";

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

describe("task evaluator", () => {
  const strict = policy({ completion: { require_output: true } });

  it("with require_output denies a positive outcome without output only", () => {
    expect(evaluateTaskPolicy(strict, { hasOutput: false, outcomePositive: true }).allowed).toBe(
      false,
    );
    expect(evaluateTaskPolicy(strict, { hasOutput: false, outcomePositive: false }).allowed).toBe(
      true,
    );
    expect(evaluateTaskPolicy(strict, { hasOutput: true, outcomePositive: true }).allowed).toBe(
      true,
    );
    expect(
      evaluateTaskPolicy(policy({}), { hasOutput: false, outcomePositive: true }).allowed,
    ).toBe(true);
  });
});
