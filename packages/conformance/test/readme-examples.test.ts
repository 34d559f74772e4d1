// Package README examples are files here, run as tests, and shown verbatim in the READMEs.
import { readFileSync } from "node:fs";
import { startMacpServer } from "@macp/connect/node";
import { createDevIdentity, createRuntime } from "@macp/core";
import { describe, expect, it } from "vitest";
import { runExample } from "../src/examples/core-readme.js";
import { initialize } from "../src/examples/proto-readme.js";

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

describe("@macp/proto README", () => {
  it("shows the example file verbatim", () => {
    expect(read("../../proto/README.md")).toContain(body(read("../src/examples/proto-readme.ts")));
  });

  it("initializes against a running server", async () => {
    const runtime = createRuntime({ clock: { now: () => Date.now() } });
    const server = await startMacpServer({
      runtime,
      port: 0,
      authenticate: () => createDevIdentity("agent://readme"),
    });
    try {
      expect(await initialize(server.url)).toBe("1.0");
    } finally {
      await server.close({ drainMs: 1000 });
    }
  });
});
