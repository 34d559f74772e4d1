import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { SessionIdSet } from "./session-id-set.js";

const uuid = (n: number) =>
  `${(Math.imul(n, 0x9e3779b1) >>> 0).toString(16).padStart(8, "0")}-0000-4000-8000-${n.toString(16).padStart(12, "0")}`;

describe("SessionIdSet", () => {
  it("holds canonical UUIDs and any other id form, and forgets deleted ones", () => {
    const set = new SessionIdSet();
    const opaque = "opaque-session-id-0123456789";
    const upper = "0190F3C2-7A1B-7C3D-8E4F-A0B1C2D3E4F5";
    set.add(uuid(1)).add(opaque).add(upper).add(uuid(1));
    expect(set.size).toBe(3);
    expect(set.has(uuid(1))).toBe(true);
    expect(set.has(uuid(2))).toBe(false);
    expect(set.has(opaque)).toBe(true);
    expect(set.has(upper)).toBe(true);
    expect(set.has(upper.toLowerCase())).toBe(false);
    expect([...set].sort()).toEqual([uuid(1), opaque, upper].sort());
    expect(set.delete(uuid(1))).toBe(true);
    expect(set.delete(uuid(1))).toBe(false);
    expect(set.delete(opaque)).toBe(true);
    expect(set.has(uuid(1))).toBe(false);
    expect([...set]).toEqual([upper]);
  });

  it("grows past its first table and keeps every id, at under 48 bytes per UUID", () => {
    const set = new SessionIdSet();
    const count = 100_000;
    for (let n = 0; n < count; n++) set.add(uuid(n));
    expect(set.size).toBe(count);
    for (let n = 0; n < count; n += 997) expect(set.has(uuid(n))).toBe(true);
    expect(set.has(uuid(count))).toBe(false);
    expect(set.approximateBytes / count).toBeLessThan(48);
    expect(new Set(set).size).toBe(count);
  });

  it("reuses removed slots instead of growing when ids come and go", () => {
    const set = new SessionIdSet();
    for (let n = 0; n < 50_000; n++) {
      set.add(uuid(n));
      if (n >= 100) set.delete(uuid(n - 100));
    }
    expect(set.size).toBe(100);
    expect(set.approximateBytes).toBeLessThan(20_000);
    expect(set.has(uuid(49_999))).toBe(true);
    expect(set.has(uuid(49_899))).toBe(false);
  });

  it("behaves like a Set<string> for any sequence of adds and deletes", () => {
    const id = fc.oneof(
      fc.uuid(),
      fc.integer({ min: 0, max: 64 }).map(uuid),
      fc.stringMatching(/^[A-Za-z0-9_-]{22,40}$/),
    );
    const op = fc.tuple(fc.constantFrom("add", "delete"), id);
    fc.assert(
      fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
        const set = new SessionIdSet();
        const model = new Set<string>();
        for (const [kind, value] of ops) {
          if (kind === "add") {
            set.add(value);
            model.add(value);
          } else {
            expect(set.delete(value)).toBe(model.delete(value));
          }
          expect(set.has(value)).toBe(model.has(value));
        }
        expect(set.size).toBe(model.size);
        expect([...set].sort()).toEqual([...model].sort());
      }),
    );
  });
});
