import { create } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createWritableIterable } from "@connectrpc/connect/protocol";
import { createRuntime } from "@macp/core";
import { SimulatedClock } from "@macp/core/testing";
import {
  EnvelopeSchema,
  MACPRuntimeService,
  type StreamSessionRequest,
  StreamSessionRequestSchema,
} from "@macp/proto";
import { describe, expect, it } from "vitest";
import { createInProcessTransport } from "./in-process-transport.js";
import { recordTranscript } from "./record-transcript.js";
import { TranscriptRecorder } from "./transcript-recorder.js";

describe("TranscriptRecorder", () => {
  it("records a stream's frames, both ways, and how it ended", async () => {
    const clock = new SimulatedClock();
    const runtime = createRuntime({ clock });
    const recorder = new TranscriptRecorder();
    const client = createClient(
      MACPRuntimeService,
      createInProcessTransport(runtime, {
        identity: "agent://alice",
        clock,
        interceptors: [recorder.interceptor("alice")],
      }),
    );
    const frames = createWritableIterable<StreamSessionRequest>();
    const out = client.streamSession(frames)[Symbol.asyncIterator]();
    // Unknown session: the subscribe frame ends the call with NOT_FOUND (STR-10).
    void frames.write(
      create(StreamSessionRequestSchema, { subscribeSessionId: "no-such-session-00000000" }),
    );
    await expect(out.next()).rejects.toMatchObject({
      rawMessage: expect.stringContaining("not found"),
    });
    await runtime.close();

    expect(recorder.entries).toEqual([
      {
        kind: "request",
        call: 1,
        agent: "alice",
        method: "StreamSession",
        message: { subscribeSessionId: "no-such-session-00000000" },
      },
      {
        kind: "error",
        call: 1,
        agent: "alice",
        method: "StreamSession",
        code: "NotFound",
        message: expect.stringContaining("not found"),
      },
    ]);
  });

  it("serializes a message when it passes, not when the transcript is read", async () => {
    const runtime = createRuntime({ clock: new SimulatedClock() });
    const recorder = new TranscriptRecorder();
    const client = createClient(
      MACPRuntimeService,
      createInProcessTransport(runtime, {
        identity: "agent://alice",
        interceptors: [recorder.interceptor("alice")],
      }),
    );
    const envelope = create(EnvelopeSchema, { messageType: "Signal", messageId: "s1" });
    await client.send({ envelope });
    envelope.messageId = "changed";
    expect(recorder.toText()).toContain('"messageId":"s1"');
    expect(recorder.toText()).not.toContain("changed");
    await runtime.close();
  });
});

describe("recordTranscript", () => {
  it("closes the harness when the script throws", async () => {
    let closed: Promise<unknown> | undefined;
    await expect(
      recordTranscript({ agents: ["agent://alice"] }, async (harness) => {
        const watch = harness.client("agent://alice").watchSessions({})[Symbol.asyncIterator]();
        closed = watch.next();
        throw new Error("script failed");
      }),
    ).rejects.toThrow("script failed");
    await expect(closed).resolves.toMatchObject({ done: true });
  });
});
