// Package README examples are files here, run as tests, and shown verbatim in the READMEs.
import { readFileSync } from "node:fs";
import { startMacpServer } from "@macp/connect/node";
import { createDevIdentity, createRuntime } from "@macp/core";
import { envelope, newSessionId, SimulatedClock, startEnvelope } from "@macp/core/testing";
import { SessionState } from "@macp/proto";
import { describe, expect, it } from "vitest";
import { runOneVector } from "../src/examples/conformance-readme.js";
import { createCounterRuntime } from "../src/examples/core-custom-mode.js";
import { runExample } from "../src/examples/core-readme.js";
import { initialize } from "../src/examples/proto-readme.js";
import { ConformanceFailure, loadVectors } from "../src/index.js";

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

describe("@macp/core README: a mode of your own", () => {
  it("shows the example file verbatim", () => {
    expect(read("../../core/README.md")).toContain(
      body(read("../src/examples/core-custom-mode.ts")),
    );
  });

  it("serves the counter mode until the third Tick resolves the session", async () => {
    const runtime = createCounterRuntime(new SimulatedClock());
    const alice = createDevIdentity("agent://alice");
    const sessionId = newSessionId();
    const start = startEnvelope(sessionId, alice.sender, {
      mode: "ext.counter.v1",
      participants: [alice.sender],
    });
    expect((await runtime.send(start, alice)).isOk()).toBe(true);
    const tick = () =>
      runtime.send(envelope({ sessionId, mode: "ext.counter.v1", messageType: "Tick" }), alice);
    await tick();
    await tick();
    const stranger = createDevIdentity("agent://mallory");
    const refused = await runtime.send(
      envelope({ sessionId, mode: "ext.counter.v1", messageType: "Tick" }),
      stranger,
    );
    expect(refused.isErr() && refused.error.code).toBe("FORBIDDEN");
    const last = await tick();
    expect(last.isOk() && last.value.sessionState).toBe(SessionState.RESOLVED);
    expect(runtime.inspectSession(sessionId)?.modeState).toEqual({ count: 3 });
    await runtime.close();
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

describe("@macp/conformance README", () => {
  it("shows the example file verbatim", () => {
    expect(read("../README.md")).toContain(body(read("../src/examples/conformance-readme.ts")));
  });

  it("runs one vector and reports each message's answer", async () => {
    expect(await runOneVector("decision_reject_paths")).toEqual([
      "Proposal: FORBIDDEN",
      "Proposal: accepted",
      "Commitment: FORBIDDEN",
      "Vote: accepted",
      "Evaluation: INVALID_ENVELOPE",
    ]);
  });

  it("fails with a ConformanceFailure naming the vector and the message that differs", async () => {
    const vectors = loadVectors().map((vector) =>
      vector.name === "decision_reject_paths"
        ? {
            ...vector,
            messages: vector.messages.map((message, index) =>
              index === 0 ? { ...message, expected_error_code: "SESSION_NOT_FOUND" } : message,
            ),
          }
        : vector,
    );
    const run = runOneVector("decision_reject_paths", vectors);
    await expect(run).rejects.toBeInstanceOf(ConformanceFailure);
    await expect(run).rejects.toThrow(
      "decision_reject_paths: message 1 (Proposal from agent://outsider) was refused with FORBIDDEN, expected SESSION_NOT_FOUND",
    );
  });

  it("refuses a vector name it does not ship", async () => {
    await expect(runOneVector("decision_unknown")).rejects.toThrow(
      "no vector named decision_unknown",
    );
  });
});
