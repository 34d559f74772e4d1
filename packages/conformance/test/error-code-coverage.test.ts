// Every error code the core can produce must be asserted by at least one core test.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ErrorCode } from "@macp/core";
import { expect, it } from "vitest";

const coreSources = fileURLToPath(new URL("../../core/src/", import.meta.url));

function testFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return testFiles(path);
    return entry.name.endsWith(".test.ts") ? [path] : [];
  });
}

it("every ErrorCode is asserted by a core test", () => {
  const tests = testFiles(coreSources).map((file) => readFileSync(file, "utf8"));
  const untested = Object.values(ErrorCode).filter((code) => {
    const asserted = new RegExp(`ErrorCode\\.${code}\\b|"${code}"`);
    return !tests.some((source) => asserted.test(source));
  });
  expect(untested).toEqual([]);
});
