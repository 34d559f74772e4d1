// `macp-runtime --help` and `--version`: answered before the environment is
// read, so they never start a server; the help lists every variable the
// executable reads, with the default the reference documentation gives.

import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { HELP_DEFAULTS } from "../src/help-text.js";
import { buildRuntime, devEnv, MAIN_JS, PACKAGE_DIR, REPO_DIR, spawnNode } from "./helpers.js";

const manifest = JSON.parse(readFileSync(join(PACKAGE_DIR, "package.json"), "utf8")) as {
  version: string;
};

/** Variable name to default, from the tables of docs/reference/env-vars.md. */
function documentedDefaults(): Map<string, string> {
  const text = readFileSync(join(REPO_DIR, "docs", "reference", "env-vars.md"), "utf8");
  const defaults = new Map<string, string>();
  for (const line of text.split("\n")) {
    const cells = line.split("|").map((cell) => cell.trim());
    const [, names, value] = cells;
    if (names === undefined || value === undefined || !names.startsWith("`")) continue;
    for (const name of names.match(/[A-Z][A-Z0-9_]+/g) ?? []) defaults.set(name, value);
  }
  return defaults;
}

/** Every MACP_* name the executable's own sources and @macp/auth's read. */
function variablesInSources(): Set<string> {
  const names = new Set<string>();
  const scan = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== "examples") scan(path);
      } else if (entry.name.endsWith(".ts") && !entry.name.endsWith(".test.ts")) {
        const text = readFileSync(path, "utf8");
        for (const [, name] of text.matchAll(/["`.](MACP_[A-Z0-9_]*[A-Z0-9])\b/g)) {
          if (name !== undefined) names.add(name);
        }
      }
    }
  };
  scan(join(PACKAGE_DIR, "src"));
  scan(join(REPO_DIR, "packages", "auth", "src"));
  return names;
}

// Doc defaults carry backticks and, at times, a gloss in parentheses.
const plain = (value: string) =>
  value
    .replaceAll("`", "")
    .replace(/\s*\(.*\)$/, "")
    .trim();

beforeAll(buildRuntime, 120_000);

describe("macp-runtime --help", () => {
  it("prints the help and exits 0 without starting, even with settings that would serve", async () => {
    const child = spawnNode(MAIN_JS, ["--help"], devEnv({ MACP_LOG_LEVEL: "info" }));
    expect(await child.exited).toBe(0);
    expect(child.stdout()).toContain("Usage: macp-runtime [--help | --version]");
    expect(child.stdout()).not.toContain("listening");
    expect(child.stderr()).toBe("");
  });

  it("prints the help with settings that would refuse to start", async () => {
    const child = spawnNode(MAIN_JS, ["-h"], { MACP_BIND_ADDR: "localhost:1" });
    expect(await child.exited).toBe(0);
    expect(child.stdout()).toContain("MACP_BIND_ADDR");
  });

  it("lists each documented variable with its documented default", async () => {
    const child = spawnNode(MAIN_JS, ["--help"], {});
    expect(await child.exited).toBe(0);
    const documented = documentedDefaults();
    expect(documented.size).toBeGreaterThan(30);
    for (const [name, value] of documented) {
      expect(HELP_DEFAULTS.has(name), `${name} is documented but not in --help`).toBe(true);
      expect(plain(HELP_DEFAULTS.get(name) ?? ""), name).toBe(plain(value));
      const row = child.stdout().match(new RegExp(`^  ${name} +(.+?)  `, "m"));
      expect(row?.[1], name).toBe(HELP_DEFAULTS.get(name));
    }
    expect([...HELP_DEFAULTS.keys()].filter((name) => !documented.has(name))).toEqual([]);
  });

  it("lists every MACP_* variable the sources read", () => {
    const read = variablesInSources();
    expect(read.size).toBeGreaterThan(30);
    expect([...read].filter((name) => !HELP_DEFAULTS.has(name))).toEqual([]);
  });
});

describe("macp-runtime --version", () => {
  it("prints the package version and exits 0 without starting", async () => {
    const child = spawnNode(MAIN_JS, ["--version"], devEnv({ MACP_LOG_LEVEL: "info" }));
    expect(await child.exited).toBe(0);
    expect(child.stdout()).toBe(`${manifest.version}\n`);
  });
});

describe("macp-runtime with an unknown argument", () => {
  it.each([["--port=1"], ["serve"]])("refuses %s with exit 2, naming it", async (arg) => {
    const child = spawnNode(MAIN_JS, [arg], devEnv());
    expect(await child.exited).toBe(2);
    expect(child.stderr()).toContain(arg.replace(/=.*/, ""));
    expect(child.stderr()).toContain("--help");
    expect(child.stdout()).toBe("");
  });
});
