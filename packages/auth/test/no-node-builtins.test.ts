// @macp/auth runs wherever a Connect router runs (browsers and edge runtimes
// included), so its sources import no Node built-ins.

import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const SRC = fileURLToPath(new URL("../src", import.meta.url));

describe("@macp/auth sources", () => {
  it("import no node:* module", () => {
    const files = readdirSync(SRC).filter(
      (name) => name.endsWith(".ts") && !name.endsWith(".test.ts"),
    );
    expect(files.length).toBeGreaterThan(5);
    const offenders = files.filter((name) =>
      /from\s*["']node:|import\(\s*["']node:/.test(readFileSync(join(SRC, name), "utf8")),
    );
    expect(offenders).toEqual([]);
  });
});
