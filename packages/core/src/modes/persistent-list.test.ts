import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { PersistentList } from "./persistent-list.js";

describe("PersistentList", () => {
  it("appends without changing the version it was given", () => {
    const empty = PersistentList.empty<number>();
    const one = empty.append(1);
    const two = one.append(2);
    expect(empty.toArray()).toEqual([]);
    expect(one.toArray()).toEqual([1]);
    expect(two.toArray()).toEqual([1, 2]);
    expect(one.length).toBe(1);
    expect(one.at(1)).toBeUndefined();
  });

  it("leaves newer versions alone when an older version is appended to (a branch)", () => {
    const base = PersistentList.from(["a", "b"]);
    const kept = base.append("c"); // shares base's backing array
    const branch = base.append("x"); // must not overwrite "c"
    const further = kept.append("d");
    expect(base.toArray()).toEqual(["a", "b"]);
    expect(kept.toArray()).toEqual(["a", "b", "c"]);
    expect(branch.toArray()).toEqual(["a", "b", "x"]);
    expect(further.toArray()).toEqual(["a", "b", "c", "d"]);
    expect(branch.append("y").toArray()).toEqual(["a", "b", "x", "y"]);
    expect(kept.toArray()).toEqual(["a", "b", "c"]);
  });

  it("shares nothing between lists started from the empty list", () => {
    const first = PersistentList.empty<string>().append("one");
    const second = PersistentList.empty<string>().append("two");
    expect(first.toArray()).toEqual(["one"]);
    expect(second.toArray()).toEqual(["two"]);
    expect(PersistentList.empty<string>().length).toBe(0);
  });

  it("reads like the array it stands for", () => {
    const list = PersistentList.from([1, 2, 3, 4]);
    const longer = list.append(5);
    expect([...list]).toEqual([1, 2, 3, 4]);
    expect(list.map((n, i) => n * 10 + i)).toEqual([10, 21, 32, 43]);
    expect(list.filter((n) => n % 2 === 0)).toEqual([2, 4]);
    expect(list.some((n) => n === 5)).toBe(false);
    expect(longer.some((n) => n === 5)).toBe(true);
    expect(list.every((n) => n < 5)).toBe(true);
    expect(list.find((n) => n > 2)).toBe(3);
    expect(list.at(-1)).toBe(4);
    expect(JSON.stringify({ list })).toBe('{"list":[1,2,3,4]}');
    const seen: number[] = [];
    list.forEach((n) => {
      seen.push(n);
    });
    expect(seen).toEqual([1, 2, 3, 4]);
  });

  it("gives out copies, never its shared backing array", () => {
    const list = PersistentList.from([1, 2]);
    const copy = list.toArray();
    copy.push(99);
    expect(list.append(3).toArray()).toEqual([1, 2, 3]);
  });

  it("behaves like copying arrays under any sequence of appends to any version", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(), fc.integer()), { maxLength: 60 }), (operations) => {
        const versions = [PersistentList.empty<number>()];
        const models: number[][] = [[]];
        for (const [pick, value] of operations) {
          const index = pick % versions.length;
          versions.push((versions[index] as PersistentList<number>).append(value));
          models.push([...(models[index] as number[]), value]);
          // Every version, old or new, still holds exactly what it held.
          for (let v = 0; v < versions.length; v++) {
            expect((versions[v] as PersistentList<number>).toArray()).toEqual(models[v]);
          }
        }
      }),
    );
  });
});
