import { fromBinary } from "@bufbuild/protobuf";
import {
  type Ack,
  type Envelope,
  ProgressPayloadSchema,
  SessionState,
  SignalPayloadSchema,
} from "@macp/proto";
import { err, ok } from "neverthrow";
import { ErrorCode, macpError } from "../errors.js";
import type { Identity } from "../identity.js";
import { sharedSessionMessage, sharedStart } from "./cluster.js";
import { isBlank, isRuntimeOnlyType } from "./envelope-checks.js";
import type { Kernel } from "./kernel.js";
import type { MaybeAsync, Outcome } from "./outcome.js";
import { sessionMessage } from "./session-messages.js";
import { startSession } from "./session-start.js";

/** ENV-12..14: the kernel proper, after every envelope check. */
export function dispatch(
  kernel: Kernel,
  envelope: Envelope,
  identity: Identity,
): MaybeAsync<Outcome<Ack>> {
  if (kernel.closed) {
    return err(macpError(ErrorCode.INTERNAL_ERROR, "the runtime is shutting down"));
  }
  switch (envelope.messageType) {
    case "SessionStart":
      if (kernel.log.shared !== undefined) {
        return sharedStart(kernel, kernel.log.shared, envelope, identity);
      }
      return startSession(kernel, envelope, identity);
    case "Signal":
    case "Progress":
      return acceptAmbient(kernel, envelope);
    default:
      if (isRuntimeOnlyType(envelope.messageType)) {
        return err(
          macpError(
            ErrorCode.INVALID_ENVELOPE,
            `${envelope.messageType} is written by the runtime only; use the matching RPC`,
          ),
        );
      }
      if (kernel.log.shared !== undefined) return sharedSessionMessage(kernel, envelope);
      return sessionMessage(kernel, envelope);
  }
}

/** Signals and Progress go to the ambient bus, never to a session. */
function acceptAmbient(kernel: Kernel, envelope: Envelope): MaybeAsync<Outcome<Ack>> {
  if (envelope.payload.length > 0) {
    try {
      if (envelope.messageType === "Signal") {
        const signal = fromBinary(SignalPayloadSchema, envelope.payload);
        if (isBlank(signal.signalType)) {
          return err(macpError(ErrorCode.INVALID_ENVELOPE, "signal_type is required"));
        }
      } else {
        fromBinary(ProgressPayloadSchema, envelope.payload);
      }
    } catch {
      return err(
        macpError(
          ErrorCode.INVALID_ENVELOPE,
          `payload is not a valid ${envelope.messageType}Payload`,
        ),
      );
    }
  }
  const shared = kernel.log.shared;
  if (shared !== undefined) {
    // Every instance, this one included, publishes it when the shared feed delivers it,
    // so all watchers see one order.
    return shared.publishAmbient(envelope).then(
      () => ok(kernel.ack(envelope, SessionState.OPEN, false)),
      (cause: unknown) => kernel.log.appendFailed(envelope.sessionId, cause),
    );
  }
  kernel.hubs.signals.publish(envelope);
  return ok(kernel.ack(envelope, SessionState.OPEN, false));
}
