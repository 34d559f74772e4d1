import { fromBinary } from "@bufbuild/protobuf";
import { type SessionStartPayload, SessionStartPayloadSchema } from "@macp/proto";
import { err, ok, type Result } from "neverthrow";
import type { ModeEntry } from "../mode-handler.js";
import { createPassthroughMode } from "../modes/passthrough/passthrough-mode.js";
import type { LogRecord } from "../store/log-record.js";
import type { Kernel } from "./kernel.js";
import type { Session } from "./session.js";
import { evaluateStart, openSession, type SessionEvents } from "./session-machine.js";

/**
 * Opens a session from the first record of its log, using only what the log
 * recorded (the binding on the SessionStart, its acceptance time). Recovery
 * and replicas of a shared log both start here; a log with no records yields
 * no session.
 */
export function openFromLog(
  kernel: Kernel,
  sessionId: string,
  first: LogRecord | undefined,
): Result<{ readonly session: Session; readonly events: SessionEvents } | undefined, string> {
  if (first === undefined) return ok(undefined);
  if (
    first.kind !== "incoming" ||
    first.envelope.messageType !== "SessionStart" ||
    !first.binding
  ) {
    return err("the log does not begin with a SessionStart record");
  }
  const binding = first.binding;
  let start: SessionStartPayload;
  try {
    start = fromBinary(SessionStartPayloadSchema, first.envelope.payload);
  } catch {
    return err("the SessionStart payload cannot be decoded");
  }
  // Sessions of a mode no longer registered replay on the descriptor their log recorded.
  const entry: ModeEntry = kernel.modes.get(first.envelope.mode) ?? {
    descriptor: binding.modeDescriptor,
    handler: createPassthroughMode(binding.modeDescriptor),
    strict: binding.strict,
    standardsTrack: false,
    builtIn: false,
  };
  const envelope =
    first.envelope.sessionId === sessionId ? first.envelope : { ...first.envelope, sessionId };
  const opening = evaluateStart(entry, envelope, start, binding);
  if (opening.isErr()) {
    return err(`SessionStart no longer validates: ${opening.error.message}`);
  }
  return ok(openSession(opening.value, entry, { ...first, binding }, kernel.table.takeOrdinal()));
}
