import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { withEntry } from "./mode-support.js";
import { PersistentMap } from "./persistent-map.js";

describe("PersistentMap", () => {
  it("sets without changing the version it was given", () => {
    const empty = PersistentMap.empty<string, number>();
    const one = empty.set("a", 1);
    const two = one.set("b", 2);
    const replaced = two.set("a", 10);
    expect([...empty]).toEqual([]);
    expect([...one]).toEqual([["a", 1]]);
    expect([...two]).toEqual([
      ["a", 1],
      ["b", 2],
    ]);
    expect([...replaced]).toEqual([
      ["a", 10],
      ["b", 2],
    ]);
    expect(one.get("a")).toBe(1);
    expect(one.has("b")).toBe(false);
    expect(two.get("a")).toBe(1);
    expect([one.size, two.size, replaced.size]).toEqual([1, 2, 2]);
  });

  it("leaves newer versions alone when an older version is written to (a branch)", () => {
    const base = PersistentMap.from<string, string>([["p1", "x"]]);
    const kept = base.set("p2", "kept");
    const branch = base.set("p2", "branch").set("p1", "y");
    expect([...base]).toEqual([["p1", "x"]]);
    expect([...kept]).toEqual([
      ["p1", "x"],
      ["p2", "kept"],
    ]);
    expect([...branch]).toEqual([
      ["p1", "y"],
      ["p2", "branch"],
    ]);
    expect(kept.set("p3", "z").get("p2")).toBe("kept");
  });

  it("iterates in first-insertion order, like a Map copied and updated", () => {
    let persistent = PersistentMap.empty<string, number>();
    let plain: ReadonlyMap<string, number> = new Map();
    for (const [key, value] of [
      ["b", 1],
      ["a", 2],
      ["b", 3],
      ["c", 4],
    ] as const) {
      persistent = persistent.set(key, value);
      plain = withEntry(plain, key, value);
    }
    expect([...persistent.entries()]).toEqual([...plain.entries()]);
    expect([...persistent.keys()]).toEqual(["b", "a", "c"]);
    expect([...persistent.values()]).toEqual([3, 2, 4]);
    const visited: string[] = [];
    persistent.forEach((value, key) => {
      visited.push(`${key}=${value}`);
    });
    expect(visited).toEqual(["b=3", "a=2", "c=4"]);
    expect(JSON.stringify(persistent)).toBe('{"b":3,"a":2,"c":4}');
  });

  it("is what withEntry returns for a persistent map, and a plain Map stays plain", () => {
    const persistent = withEntry(PersistentMap.empty<string, number>(), "a", 1);
    expect(persistent).toBeInstanceOf(PersistentMap);
    const plain = new Map([["a", 1]]);
    const next = withEntry(plain, "b", 2);
    expect(next).toBeInstanceOf(Map);
    expect(plain.has("b")).toBe(false);
  });

  it("behaves like copying Maps under any sequence of writes to any version", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(fc.nat(), fc.constantFrom("a", "b", "c", "d", "__proto__"), fc.integer()),
          {
            maxLength: 60,
          },
        ),
        (operations) => {
          const versions = [PersistentMap.empty<string, number>()];
          const models: Map<string, number>[] = [new Map()];
          for (const [pick, key, value] of operations) {
            const index = pick % versions.length;
            versions.push((versions[index] as PersistentMap<string, number>).set(key, value));
            models.push(new Map(models[index]).set(key, value));
            for (let v = 0; v < versions.length; v++) {
              const version = versions[v] as PersistentMap<string, number>;
              const model = models[v] as Map<string, number>;
              expect([...version]).toEqual([...model]);
              expect(version.size).toBe(model.size);
              for (const probe of ["a", "b", "c", "d", "__proto__"]) {
                expect(version.get(probe)).toBe(model.get(probe));
              }
            }
          }
        },
      ),
    );
  });
});
