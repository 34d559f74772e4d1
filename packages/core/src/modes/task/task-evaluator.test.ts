import { describe, expect, it } from "vitest";
import { testPolicy as policy } from "../mode-test-support.js";
import { evaluateTaskPolicy } from "./task-evaluator.js";

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
