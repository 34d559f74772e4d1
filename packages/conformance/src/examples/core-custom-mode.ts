// This file is shown verbatim in packages/core/README.md (test/readme-examples.test.ts checks it).
import { create } from "@bufbuild/protobuf";
import { type Clock, createRuntime, ErrorCode, type ModeHandler, macpError } from "@macp/core";
import { ModeDescriptorSchema } from "@macp/proto";
import { err, ok } from "neverthrow";

// Participants send Tick; the third Tick resolves the session.
const counter: ModeHandler<number> = {
  onSessionStart: () => ok(0),
  authorizeSender: (ctx, _count, envelope) =>
    ctx.session.participants.includes(envelope.sender)
      ? ok(undefined)
      : err(macpError(ErrorCode.FORBIDDEN, "not a participant")),
  onMessage: (_ctx, count, envelope) =>
    envelope.messageType === "Tick"
      ? ok(count + 1 === 3 ? { state: 3, resolution: new Uint8Array([3]) } : { state: count + 1 })
      : err(macpError(ErrorCode.INVALID_ENVELOPE, "a counter takes Tick")),
  encodeState: (count) => ({ count }),
};

export function createCounterRuntime(clock: Clock) {
  return createRuntime({
    clock,
    modes: [
      {
        descriptor: create(ModeDescriptorSchema, {
          mode: "ext.counter.v1",
          modeVersion: "1.0.0",
          messageTypes: ["SessionStart", "Tick"],
          terminalMessageTypes: ["Tick"],
        }),
        handler: counter as ModeHandler,
      },
    ],
  });
}
