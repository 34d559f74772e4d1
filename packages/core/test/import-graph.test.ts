// The core's module graph must stay a DAG (type-only imports included), and
// its sources must stay free of Node built-ins: it runs anywhere.

import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), "../src");
const IMPORT =
  /(?:^|[\s;])(?:import|export)\s[^;]*?from\s*["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/gm;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith(".ts") && !entry.name.endsWith(".test.ts") ? [path] : [];
  });
}

function specifiers(file: string): string[] {
  const text = readFileSync(file, "utf8");
  return [...text.matchAll(IMPORT)].map((match) => match[1] ?? match[2] ?? "");
}

/** Each module's relative imports, as paths under src. */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sourceFiles(SRC)) {
    const local = specifiers(file)
      .filter((specifier) => specifier.startsWith("."))
      .map((specifier) => relative(SRC, resolve(dirname(file), specifier.replace(/\.js$/, ".ts"))));
    graph.set(relative(SRC, file), local);
  }
  return graph;
}

/** One import cycle, as the list of modules around it, or undefined. */
export function findCycle(graph: ReadonlyMap<string, readonly string[]>): string[] | undefined {
  const done = new Set<string>();
  const path: string[] = [];
  const onPath = new Set<string>();
  const visit = (node: string): string[] | undefined => {
    if (onPath.has(node)) return [...path.slice(path.indexOf(node)), node];
    if (done.has(node)) return undefined;
    path.push(node);
    onPath.add(node);
    for (const next of graph.get(node) ?? []) {
      const cycle = visit(next);
      if (cycle !== undefined) return cycle;
    }
    path.pop();
    onPath.delete(node);
    done.add(node);
    return undefined;
  };
  for (const node of graph.keys()) {
    const cycle = visit(node);
    if (cycle !== undefined) return cycle;
  }
  return undefined;
}

describe("the core's import graph", () => {
  const graph = importGraph();

  it("sees the modules and their imports", () => {
    expect(graph.get("runtime.ts")).toContain("kernel/kernel.ts");
    expect(graph.size).toBeGreaterThan(50);
  });

  it("resolves every relative import to a module", () => {
    const missing = [...graph].flatMap(([from, targets]) =>
      targets.filter((target) => !graph.has(target)).map((target) => `${from} → ${target}`),
    );
    expect(missing).toEqual([]);
  });

  it("has no import cycle", () => {
    expect(findCycle(graph)).toBeUndefined();
  });

  it("imports no Node built-in", () => {
    const nodeImports = [...graph.keys()].flatMap((file) =>
      specifiers(join(SRC, file))
        .filter((specifier) => specifier.startsWith("node:"))
        .map((specifier) => `${file}: ${specifier}`),
    );
    expect(nodeImports).toEqual([]);
  });
});

/** The graph of the folders under src (root modules left out): folder → folders it imports from. */
function folderGraph(graph: ReadonlyMap<string, readonly string[]>): Map<string, string[]> {
  const folderOf = (module: string) => (module.includes("/") ? module.split("/")[0] : undefined);
  const folders = new Map<string, Set<string>>();
  for (const [from, targets] of graph) {
    const source = folderOf(from);
    if (source === undefined) continue;
    const edges = folders.get(source) ?? new Set<string>();
    folders.set(source, edges);
    for (const target of targets) {
      const folder = folderOf(target);
      if (folder !== undefined && folder !== source) edges.add(folder);
    }
  }
  return new Map([...folders].map(([folder, edges]) => [folder, [...edges]]));
}

/** The part of a graph reachable from `roots`. */
function reachableFrom(
  graph: ReadonlyMap<string, readonly string[]>,
  roots: readonly string[],
): Map<string, readonly string[]> {
  const reached = new Map<string, readonly string[]>();
  const visit = (node: string) => {
    if (reached.has(node)) return;
    const edges = graph.get(node) ?? [];
    reached.set(node, edges);
    for (const next of edges) visit(next);
  };
  for (const root of roots) visit(root);
  return reached;
}

describe("the core's folders", () => {
  const folders = folderGraph(importGraph());

  it("have no cycle through the modes and the policy folders", () => {
    expect(folders.get("modes")).toContain("policy");
    expect(findCycle(reachableFrom(folders, ["modes", "policy"]))).toBeUndefined();
  });

  it("keep the policy folder generic: it imports no concrete mode", () => {
    expect(folders.get("policy")).not.toContain("modes");
  });
});

describe("findCycle", () => {
  it("finds a cycle through several modules", () => {
    const graph = new Map([
      ["a.ts", ["b.ts"]],
      ["b.ts", ["c.ts"]],
      ["c.ts", ["a.ts"]],
    ]);
    expect(findCycle(graph)).toEqual(["a.ts", "b.ts", "c.ts", "a.ts"]);
  });

  it("accepts a diamond", () => {
    const graph = new Map([
      ["a.ts", ["b.ts", "c.ts"]],
      ["b.ts", ["d.ts"]],
      ["c.ts", ["d.ts"]],
      ["d.ts", []],
    ]);
    expect(findCycle(graph)).toBeUndefined();
  });
});
