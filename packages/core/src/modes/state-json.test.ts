import { describe, expect, it } from "vitest";
import { compareByteOrder } from "../text/byte-order.js";
import { deepFreeze } from "./mode-test-support.js";
import { bytesJson, mapJson, serializeModeState } from "./state-json.js";

const text = (value: Parameters<typeof serializeModeState>[0]) =>
  new TextDecoder().decode(serializeModeState(value));

describe("mode-state JSON", () => {
  it("orders keys by UTF-8 bytes, not UTF-16 code units", () => {
    const keys = ["b", "\u{1F600}", "\uFF21", "a", "B"];
    expect([...keys].sort(compareByteOrder)).toEqual(["B", "a", "b", "\uFF21", "\u{1F600}"]);
    expect(compareByteOrder("ab", "a")).toBe(1);
    expect(compareByteOrder("a", "a")).toBe(0);
  });

  it("writes bytes as arrays of integers", () => {
    expect(bytesJson(new Uint8Array([0, 255, 7]))).toEqual([0, 255, 7]);
  });

  it("keeps integer-like and prototype-like map keys as data, in byte order", () => {
    const map = new Map([
      ["2", 1],
      ["10", 2],
      ["__proto__", 3],
      ["a", 4],
    ]);
    const encoded = { first: mapJson(map, (value) => value), last: true };
    expect(Object.keys(encoded.first)).toContain("__proto__");
    expect(text(encoded)).toBe('{"first":{"10":2,"2":1,"__proto__":3,"a":4},"last":true}');
  });

  it("keeps struct fields in declaration order and null for absent options", () => {
    expect(text({ zeta: null, alpha: [1, "x"], mid: { b: false, a: 1.5 } })).toBe(
      '{"zeta":null,"alpha":[1,"x"],"mid":{"b":false,"a":1.5}}',
    );
  });

  it("writes whole f64 fields the serde way", () => {
    expect(text({ evaluations: [{ confidence: 1 }, { confidence: 0.25 }], progress: 0 })).toBe(
      '{"evaluations":[{"confidence":1.0},{"confidence":0.25}],"progress":0.0}',
    );
    expect(text({ round: 3, required_approvals: 2 })).toBe('{"round":3,"required_approvals":2}');
  });

  it("passes raw bytes through", () => {
    const raw = new Uint8Array([1, 2]);
    expect(serializeModeState(raw)).toBe(raw);
  });

  it("the test helper's deepFreeze catches Map writes", () => {
    const state = deepFreeze({ entries: new Map([["k", { v: 1 }]]) });
    expect(() => state.entries.set("x", { v: 2 })).toThrow(TypeError);
    expect(() => {
      (state.entries.get("k") as { v: number }).v = 3;
    }).toThrow(TypeError);
  });
});
