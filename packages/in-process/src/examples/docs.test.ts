// The README's and the testing guide's code are these example files, verbatim,
// so the documentation cannot drift from code that CI compiles and runs.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { runReadmeExample } from "./readme-example.js";

const read = (path: string) => readFileSync(new URL(path, import.meta.url), "utf8");

/** The file from its first import on: the part the documents show. */
function body(path: string): string {
  const source = read(path);
  return source.slice(source.indexOf("import")).trim();
}

describe("packages/in-process/README.md", () => {
  it("shows the example file verbatim", () => {
    expect(read("../../README.md")).toContain(body("./readme-example.ts"));
  });

  it("runs as the README says", async () => {
    expect(await runReadmeExample()).toEqual({ started: true, state: "EXPIRED", modes: 5 });
  });
});

describe("docs/guides/testing-agents.md", () => {
  const guide = read("../../../../docs/guides/testing-agents.md");

  for (const file of [
    "./decision-agents.ts",
    "./decision-agents.test.ts",
    "./handoff-implicit-accept.test.ts",
  ]) {
    it(`shows ${file} verbatim`, () => {
      expect(guide).toContain(body(file));
    });
  }
});
