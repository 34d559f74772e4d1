// Compares two V8 heap snapshots (.heapsnapshot, as written by
// v8.writeHeapSnapshot or node --heapsnapshot-signal): per kind of object
// (constructor name for objects, the node type otherwise), how many more
// there are and how many more bytes they take in the second. What a leak
// accumulates comes out on top.

import { readFile } from "node:fs/promises";

interface RawSnapshot {
  readonly snapshot: {
    readonly meta: {
      readonly node_fields: readonly string[];
      readonly node_types: readonly [readonly string[], ...unknown[]];
    };
  };
  readonly nodes: readonly number[];
  readonly strings: readonly string[];
}

export interface HeapGroup {
  /** `Map`, `Session`, `(string)`, `(closure) handler`, … */
  readonly name: string;
  readonly count: number;
  readonly selfBytes: number;
}

/** Objects per kind: constructor name for objects, `(type)` for strings, arrays, closures and the rest. */
export async function summariseHeapSnapshot(path: string): Promise<Map<string, HeapGroup>> {
  const raw = JSON.parse(await readFile(path, "utf8")) as RawSnapshot;
  const fields = raw.snapshot.meta.node_fields;
  const types = raw.snapshot.meta.node_types[0];
  const width = fields.length;
  const typeAt = fields.indexOf("type");
  const nameAt = fields.indexOf("name");
  const sizeAt = fields.indexOf("self_size");
  const groups = new Map<string, { count: number; selfBytes: number }>();
  for (let i = 0; i < raw.nodes.length; i += width) {
    const type = types[raw.nodes[i + typeAt] as number] ?? "?";
    const name =
      type === "object" || type === "native"
        ? (raw.strings[raw.nodes[i + nameAt] as number] ?? "?")
        : type === "closure"
          ? `(closure) ${raw.strings[raw.nodes[i + nameAt] as number] ?? ""}`
          : `(${type})`;
    const group = groups.get(name) ?? { count: 0, selfBytes: 0 };
    group.count++;
    group.selfBytes += raw.nodes[i + sizeAt] as number;
    groups.set(name, group);
  }
  return new Map([...groups].map(([name, g]) => [name, { name, ...g }]));
}

/** The kinds whose total size grew most from `before` to `after`. */
export async function compareHeapSnapshots(
  before: string,
  after: string,
  top = 20,
): Promise<{ name: string; countDelta: number; bytesDelta: number }[]> {
  const [a, b] = await Promise.all([summariseHeapSnapshot(before), summariseHeapSnapshot(after)]);
  const names = new Set([...a.keys(), ...b.keys()]);
  return [...names]
    .map((name) => ({
      name,
      countDelta: (b.get(name)?.count ?? 0) - (a.get(name)?.count ?? 0),
      bytesDelta: (b.get(name)?.selfBytes ?? 0) - (a.get(name)?.selfBytes ?? 0),
    }))
    .sort((x, y) => y.bytesDelta - x.bytesDelta)
    .slice(0, top);
}
