// Package README examples are files here, run as tests, and shown verbatim in the READMEs.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { runExample } from "../src/examples/core-readme.js";

const read = (path: string) => readFileSync(new URL(path, import.meta.url), "utf8");

function body(source: string): string {
  return source.slice(source.indexOf("import")).trim();
}

describe("@macp/core README", () => {
  it("shows the example file verbatim", () => {
    expect(read("../../core/README.md")).toContain(body(read("../src/examples/core-readme.ts")));
  });

  it("reaches a decision", async () => {
    expect(await runExample()).toEqual({ state: "SESSION_STATE_RESOLVED", votes: 1 });
  });
});
