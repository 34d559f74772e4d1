import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { StreamTable } from "./stream-table.js";

type Operation =
  | { readonly kind: "set"; readonly id: number; readonly value: string }
  | { readonly kind: "delete"; readonly id: number }
  | { readonly kind: "clear" };

const operation: fc.Arbitrary<Operation> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({ kind: fc.constant("set" as const), id: fc.nat(64), value: fc.string() }),
  },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("delete" as const), id: fc.nat(64) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("clear" as const) }) },
);

describe("StreamTable", () => {
  it("answers as a Map does, iterating in id order", () => {
    fc.assert(
      fc.property(
        fc.array(operation, { maxLength: 200 }),
        fc.array(fc.nat(64)),
        (operations, probes) => {
          const table = new StreamTable<string>();
          const model = new Map<number, string>();
          for (const step of operations) {
            if (step.kind === "set") {
              expect(table.set(step.id, step.value)).toBe(table);
              model.set(step.id, step.value);
            } else if (step.kind === "delete") {
              expect(table.delete(step.id)).toBe(model.delete(step.id));
            } else {
              table.clear();
              model.clear();
            }
            expect(table.size).toBe(model.size);
          }
          for (const id of probes) {
            expect(table.get(id)).toBe(model.get(id));
            expect(table.has(id)).toBe(model.has(id));
          }
          const sorted = [...model].sort(([a], [b]) => a - b);
          expect([...table]).toEqual(sorted);
          expect([...table.entries()]).toEqual(sorted);
          expect([...table.keys()]).toEqual(sorted.map(([id]) => id));
          expect([...table.values()]).toEqual(sorted.map(([, value]) => value));
        },
      ),
    );
  });

  it("keeps ids in order when a lower id arrives after a higher one", () => {
    const table = new StreamTable<string>();
    table.set(5, "client 5").set(2, "server push 2").set(7, "client 7").set(4, "server push 4");
    expect([...table.keys()]).toEqual([2, 4, 5, 7]);
    expect(table.get(4)).toBe("server push 4");
  });

  it("replaces the stream under an id that is already there", () => {
    const table = new StreamTable<string>();
    table.set(1, "first").set(3, "other").set(1, "second");
    expect(table.size).toBe(2);
    expect(table.get(1)).toBe("second");
  });

  it("lets forEach's callback delete entries, and skips those not yet visited", () => {
    // node:http2 destroys every stream of a closing session this way.
    const table = new StreamTable<string>();
    for (const id of [1, 3, 5, 7]) table.set(id, `stream ${id}`);
    const visited: number[] = [];
    table.forEach((stream, id, owner) => {
      expect(owner).toBe(table);
      expect(stream).toBe(`stream ${id}`);
      visited.push(id);
      table.delete(id);
      if (id === 3) table.delete(5); // destroying one stream ended another
    });
    expect(visited).toEqual([1, 3, 7]);
    expect(table.size).toBe(0);
  });

  it("calls forEach's callback with the given this", () => {
    const table = new StreamTable<string>().set(1, "stream");
    const receiver = { seen: 0 };
    table.forEach(function (this: typeof receiver) {
      this.seen++;
    }, receiver);
    expect(receiver.seen).toBe(1);
  });

  it("names itself when printed", () => {
    expect(Object.prototype.toString.call(new StreamTable())).toBe("[object StreamTable]");
  });
});
