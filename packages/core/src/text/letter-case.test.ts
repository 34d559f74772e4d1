import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { lowerCaseEquals, Spellings, upperCaseEquals } from "./letter-case.js";

const VOTES = new Spellings(["APPROVE", "REJECT", "ABSTAIN"], "upper");
const SEVERITIES = new Spellings(["critical", "high", "medium", "low"], "lower");

describe("keyword matching without conversion", () => {
  it("finds members in any letter case and returns the set's own string", () => {
    expect(VOTES.find("APPROVE")).toBe("APPROVE");
    expect(VOTES.find("approve")).toBe("APPROVE");
    expect(VOTES.find("Reject")).toBe("REJECT");
    expect(VOTES.find("maybe")).toBeUndefined();
    expect(VOTES.find("")).toBeUndefined();
    expect(SEVERITIES.find("CRITICAL")).toBe("critical");
    expect(SEVERITIES.has("low")).toBe(true);
    expect(SEVERITIES.has("LOW")).toBe(false);
  });

  it("agrees with toUpperCase/toLowerCase, including Unicode case mappings", () => {
    // U+0131 (dotless i) upper-cases to "I"; U+017F (long s) to "S"; U+FB00 ("ff") to "FF".
    expect(upperCaseEquals("revıew", "REVIEW")).toBe(true);
    expect(VOTES.find("abſtain")).toBe("ABSTAIN");
    expect(upperCaseEquals("\uFB00", "FF")).toBe(true);
    // U+0130 lower-cases to "i" plus a combining dot, so this is not "critical".
    expect(lowerCaseEquals("CRİTİCAL", "critical")).toBe(false);
    expect(upperCaseEquals("REJECT", "REVIEW")).toBe(false);
    expect(upperCaseEquals("approve ", "APPROVE")).toBe(false);
  });

  it("matches toUpperCase and toLowerCase on arbitrary text", () => {
    const text = fc.oneof(
      fc.string(),
      fc.constantFrom("approve", "APPROVE", "Review", "revıew", "ſ", "\uFB00", "crItical", "ß"),
    );
    const target = fc.constantFrom("APPROVE", "REVIEW", "SS", "S", "FF", "critical", "low", "");
    fc.assert(
      fc.property(text, target, (value, goal) => {
        expect(upperCaseEquals(value, goal.toUpperCase())).toBe(
          value.toUpperCase() === goal.toUpperCase(),
        );
        expect(lowerCaseEquals(value, goal.toLowerCase())).toBe(
          value.toLowerCase() === goal.toLowerCase(),
        );
        const upper = new Spellings([goal.toUpperCase()], "upper");
        expect(upper.find(value)).toBe(
          value.toUpperCase() === goal.toUpperCase() ? goal.toUpperCase() : undefined,
        );
      }),
    );
  });
});
