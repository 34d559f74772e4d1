import { describe, expect, it } from "vitest";
import { verdictToResult } from "./policy-verdict.js";

describe("verdictToResult", () => {
  it("turns a denial into POLICY_DENIED carrying the reasons", () => {
    const error = verdictToResult({ allowed: false, reasons: ["one", "two"] })._unsafeUnwrapErr();
    expect(error).toMatchObject({ code: "POLICY_DENIED", reasons: ["one", "two"] });
    expect(verdictToResult({ allowed: true, reasons: ["fine"] }).isOk()).toBe(true);
  });
});
