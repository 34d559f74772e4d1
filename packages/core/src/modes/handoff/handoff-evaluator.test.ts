import { describe, expect, it } from "vitest";
import { testPolicy as policy } from "../mode-test-support.js";
import { evaluateHandoffPolicy } from "./handoff-evaluator.js";

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
