import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { PersistentNestedMap } from "./persistent-nested-map.js";

type Nested = PersistentNestedMap<string, string, number>;

/** The nested map as plain arrays, rows and columns in iteration order. */
function plain(
  map: ReadonlyMap<string, ReadonlyMap<string, number>>,
): [string, [string, number][]][] {
  return [...map].map(([row, columns]) => [row, [...columns]]);
}

describe("PersistentNestedMap", () => {
  it("sets cells without changing the version it was given", () => {
    const empty: Nested = PersistentNestedMap.empty();
    const one = empty.setIn("p1", "a", 1);
    const two = one.setIn("p1", "b", 2);
    const three = two.setIn("p2", "a", 3);
    expect(plain(empty)).toEqual([]);
    expect(plain(one)).toEqual([["p1", [["a", 1]]]]);
    expect(plain(two)).toEqual([
      [
        "p1",
        [
          ["a", 1],
          ["b", 2],
        ],
      ],
    ]);
    expect(plain(three)).toEqual([
      [
        "p1",
        [
          ["a", 1],
          ["b", 2],
        ],
      ],
      ["p2", [["a", 3]]],
    ]);
    expect(one.hasIn("p1", "b")).toBe(false);
    expect(two.getIn("p1", "b")).toBe(2);
    expect(two.has("p2")).toBe(false);
    expect([one.size, two.size, three.size]).toEqual([1, 1, 2]);
    // A row seen through an older version stays as it was.
    const row = one.get("p1");
    expect(row?.size).toBe(1);
    expect(row?.has("b")).toBe(false);
    expect(three.get("p1")?.size).toBe(2);
  });

  it("leaves newer versions alone when an older version is written to (a branch)", () => {
    const base: Nested = PersistentNestedMap.empty<string, string, number>().setIn("p1", "a", 1);
    const kept = base.setIn("p1", "b", 2);
    const branch = base.setIn("p1", "b", 20).setIn("p3", "c", 30);
    expect(plain(base)).toEqual([["p1", [["a", 1]]]]);
    expect(kept.getIn("p1", "b")).toBe(2);
    expect(kept.has("p3")).toBe(false);
    expect(branch.getIn("p1", "b")).toBe(20);
    expect(branch.getIn("p3", "c")).toBe(30);
    expect(kept.setIn("p1", "c", 3).getIn("p1", "b")).toBe(2);
  });

  it("lists every value it sees, row by row", () => {
    const map = PersistentNestedMap.empty<string, string, number>()
      .setIn("p2", "x", 1)
      .setIn("p1", "y", 2)
      .setIn("p2", "z", 3);
    expect(map.allValues()).toEqual([1, 3, 2]);
    expect([...map.keys()]).toEqual(["p2", "p1"]);
    expect([...(map.get("p2")?.keys() ?? [])]).toEqual(["x", "z"]);
    expect(JSON.stringify(map)).toBe('{"p2":{"x":1,"z":3},"p1":{"y":2}}');
  });

  it("behaves like copying a Map of Maps under any sequence of writes to any version", () => {
    const rows = fc.constantFrom("p1", "p2", "p3");
    const columns = fc.constantFrom("a", "b", "c");
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(), rows, columns, fc.integer()), { maxLength: 50 }),
        (operations) => {
          const versions: Nested[] = [PersistentNestedMap.empty()];
          const models: Map<string, Map<string, number>>[] = [new Map()];
          for (const [pick, row, column, value] of operations) {
            const index = pick % versions.length;
            versions.push((versions[index] as Nested).setIn(row, column, value));
            const model = new Map(models[index]);
            model.set(row, new Map(model.get(row)).set(column, value));
            models.push(model);
            for (let v = 0; v < versions.length; v++) {
              const version = versions[v] as Nested;
              const expected = models[v] as Map<string, Map<string, number>>;
              expect(plain(version)).toEqual(plain(expected));
              expect(version.size).toBe(expected.size);
              expect(version.allValues()).toEqual(
                [...expected.values()].flatMap((columnsOf) => [...columnsOf.values()]),
              );
            }
          }
        },
      ),
    );
  });
});
