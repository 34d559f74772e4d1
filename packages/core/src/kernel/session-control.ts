import { create, type DescMessage, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import {
  type Ack,
  SessionLifecycleEvent_EventType as EventType,
  SessionCancelPayloadSchema,
  SessionResumePayloadSchema,
  SessionState,
  SessionSuspendPayloadSchema,
} from "@macp/proto";
import { err, ok } from "neverthrow";
import { ErrorCode, macpError } from "../errors.js";
import type { Caller, Identity } from "../identity.js";
import { isCommitmentAuthority } from "../modes/commitment.js";
import type { InternalRecordType } from "../store/log-record.js";
import type { Kernel } from "./kernel.js";
import type { Outcome } from "./outcome.js";
import { decideOnReplica, refresh } from "./replicas.js";
import { type Session, withLock } from "./session.js";
import { lookupForCaller } from "./session-queries.js";

/** CancelSession. Cancelling a finished session succeeds with its state (LC-17): SDKs cancel in `finally`. */
export function cancelSession(
  kernel: Kernel,
  sessionId: string,
  reason: string,
  caller: Caller,
): Promise<Outcome<Ack>> {
  return control(kernel, sessionId, caller, async (session, identity) => {
    if (session.isTerminal) return ok(controlAck(sessionId, session.state, kernel.clock.now()));
    const payload = encode(SessionCancelPayloadSchema, { reason, cancelledBy: identity.sender });
    return recordControl(kernel, session, "SessionCancel", payload);
  });
}

export function suspendSession(
  kernel: Kernel,
  sessionId: string,
  reason: string,
  caller: Caller,
): Promise<Outcome<Ack>> {
  return control(kernel, sessionId, caller, async (session, identity) => {
    if (session.state !== SessionState.OPEN) return err(kernel.notOpen(session));
    const payload = encode(SessionSuspendPayloadSchema, { reason, suspendedBy: identity.sender });
    return recordControl(kernel, session, "SessionSuspend", payload);
  });
}

export function resumeSession(
  kernel: Kernel,
  sessionId: string,
  reason: string,
  caller: Caller,
): Promise<Outcome<Ack>> {
  return control(kernel, sessionId, caller, async (session, identity) => {
    if (session.state !== SessionState.SUSPENDED) return err(kernel.notOpen(session));
    // banked_ms follows the spec (remaining TTL at suspension); the new deadline is the same
    // either way (core.md LC-15).
    const now = kernel.clock.now();
    const bankedMs = Math.max(0, session.expiresAtMs - (session.suspendedAtMs ?? now));
    const payload = encode(SessionResumePayloadSchema, {
      reason,
      resumedBy: identity.sender,
      bankedMs: BigInt(bankedMs),
    });
    return recordControl(kernel, session, "SessionResume", payload);
  });
}

/**
 * Appends a runtime record for a control RPC, then applies it. A resume past
 * the suspension cap ends in EXPIRED, which the caller learns as a refusal.
 */
async function recordControl(
  kernel: Kernel,
  session: Session,
  type: InternalRecordType,
  payload: Uint8Array,
): Promise<Outcome<Ack>> {
  const now = kernel.clock.now();
  const recorded = await kernel.recordRuntime(session, type, payload, now);
  if (recorded.isErr()) return err(recorded.error);
  if (type === "SessionResume" && recorded.value.lifecycle === EventType.EXPIRED) {
    return err(
      macpError(
        ErrorCode.SESSION_NOT_OPEN,
        `session "${session.view.sessionId}" exceeded its suspension budget and expired`,
      ),
    );
  }
  return ok(controlAck(session.view.sessionId, session.state, now));
}

/** CTL-2: authenticate, look up with lazy expiry, authorize, then act under the session lock. */
async function control(
  kernel: Kernel,
  sessionId: string,
  caller: Caller,
  act: (session: Session, identity: Identity) => Promise<Outcome<Ack>>,
): Promise<Outcome<Ack>> {
  const found = await lookupForCaller(
    kernel,
    sessionId,
    caller,
    `Session '${sessionId}' not found`,
  );
  if (found.isErr()) return err(found.error);
  const { session, identity } = found.value;
  if (
    identity.sender !== session.view.initiator &&
    !isCommitmentAuthority(session.view, identity.sender)
  ) {
    return err(
      macpError(
        ErrorCode.FORBIDDEN,
        "only the initiator or a holder of commitment authority may control this session",
      ),
    );
  }
  if (kernel.log.shared !== undefined) {
    return withLock(session, () =>
      decideOnReplica(kernel, session, async () => {
        const fresh = await refresh(kernel, session);
        return fresh.isErr() ? err(fresh.error) : act(session, identity);
      }),
    );
  }
  return withLock(session, async () => {
    const expired = await kernel.expireIfDue(session);
    if (expired.isErr()) return err(expired.error);
    return act(session, identity);
  });
}

function controlAck(sessionId: string, state: SessionState, now: number): Ack {
  return {
    $typeName: "macp.v1.Ack",
    ok: true,
    duplicate: false,
    messageId: "",
    sessionId,
    acceptedAtUnixMs: BigInt(now),
    sessionState: state,
  };
}

function encode<Desc extends DescMessage>(schema: Desc, init: MessageInitShape<Desc>): Uint8Array {
  return toBinary(schema, create(schema, init));
}
