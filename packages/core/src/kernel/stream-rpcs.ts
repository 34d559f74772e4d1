import { create } from "@bufbuild/protobuf";
import {
  type Envelope,
  SessionLifecycleEvent_EventType as EventType,
  type SessionLifecycleEvent,
  SessionLifecycleEventSchema,
} from "@macp/proto";
import { err, ok } from "neverthrow";
import { ErrorCode, macpError } from "../errors.js";
import { type Caller, isAuthenticated } from "../identity.js";
import type { SessionStream } from "../runtime-api.js";
import type { Kernel } from "./kernel.js";
import type { Outcome } from "./outcome.js";
import { type KernelForStreams, SessionStreamHandler } from "./session-stream.js";

/** StreamSession: the server side of one call, ended with the runtime. */
export function openSessionStream(
  kernel: Kernel,
  streams: KernelForStreams,
  caller: Caller,
  signal?: AbortSignal,
): Outcome<SessionStream> {
  if (!isAuthenticated(caller)) {
    return err(macpError(ErrorCode.UNAUTHENTICATED, caller.unauthenticated));
  }
  const hubs = kernel.hubs;
  const closed = hubs.closeHook("StreamSession");
  const handler: SessionStreamHandler = new SessionStreamHandler(streams, caller, signal, () => {
    hubs.openStreams.delete(handler);
    closed?.();
  });
  if (hubs.closed) handler.end();
  else hubs.openStreams.add(handler);
  return ok(handler);
}

/** WatchSessions: a CREATED event per session in memory, then every lifecycle event. */
export function watchSessions(
  kernel: Kernel,
  caller: Caller,
  signal?: AbortSignal,
): Outcome<AsyncIterable<SessionLifecycleEvent>> {
  if (!isAuthenticated(caller)) {
    return err(macpError(ErrorCode.UNAUTHENTICATED, caller.unauthenticated));
  }
  const initial = [...kernel.table.sessions.values()].map((session) =>
    create(SessionLifecycleEventSchema, {
      eventType: EventType.CREATED,
      session: session.toMetadata(),
      observedAtUnixMs: BigInt(session.startedAtMs),
    }),
  );
  return ok(kernel.hubs.subscribe("WatchSessions", kernel.hubs.lifecycle, signal, initial));
}

/** WatchSignals: every accepted Signal and Progress from now on. */
export function watchSignals(
  kernel: Kernel,
  caller: Caller,
  signal?: AbortSignal,
): Outcome<AsyncIterable<Envelope>> {
  if (!isAuthenticated(caller)) {
    return err(macpError(ErrorCode.UNAUTHENTICATED, caller.unauthenticated));
  }
  return ok(kernel.hubs.subscribe("WatchSignals", kernel.hubs.signals, signal, []));
}
