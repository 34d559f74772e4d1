import { create } from "@bufbuild/protobuf";
import {
  type ListSessionsResponse,
  ListSessionsResponseSchema,
  type SessionMetadata,
} from "@macp/proto";
import { err, ok } from "neverthrow";
import { ErrorCode, macpError } from "../errors.js";
import { type Caller, type Identity, isAuthenticated } from "../identity.js";
import type { ListSessionsOptions, SessionSnapshot } from "../runtime-api.js";
import type { Kernel } from "./kernel.js";
import type { Outcome } from "./outcome.js";
import { lookupSession } from "./replicas.js";
import { compareStrings, type Session } from "./session.js";

/** GetSession: lazy expiry applies; only the initiator, participants and observers may read. */
export async function getSession(
  kernel: Kernel,
  sessionId: string,
  caller: Caller,
): Promise<Outcome<SessionMetadata>> {
  const found = await lookupForCaller(
    kernel,
    sessionId,
    caller,
    `session "${sessionId}" not found`,
  );
  if (found.isErr()) return err(found.error);
  const { session, identity } = found.value;
  if (!session.isVisibleTo(identity)) {
    return err(macpError(ErrorCode.FORBIDDEN, "session access denied"));
  }
  return ok(session.toMetadata());
}

/**
 * An authenticated caller's lookup (lazy expiry applied): UNAUTHENTICATED, or
 * SESSION_NOT_FOUND with `notFound`.
 */
export async function lookupForCaller(
  kernel: Kernel,
  sessionId: string,
  caller: Caller,
  notFound: string,
): Promise<Outcome<{ readonly session: Session; readonly identity: Identity }>> {
  if (!isAuthenticated(caller)) {
    return err(macpError(ErrorCode.UNAUTHENTICATED, caller.unauthenticated));
  }
  const found = await lookupSession(kernel, sessionId);
  if (found.isErr()) return err(found.error);
  if (found.value === undefined) return err(macpError(ErrorCode.SESSION_NOT_FOUND, notFound));
  return ok({ session: found.value, identity: caller });
}

/** ListSessions in creation order, paged with opaque tokens (D-23). */
export function listSessions(
  kernel: Kernel,
  options: ListSessionsOptions,
  caller: Caller,
): Outcome<ListSessionsResponse> {
  if (!isAuthenticated(caller)) {
    return err(macpError(ErrorCode.UNAUTHENTICATED, caller.unauthenticated));
  }
  if (options.pageSize < 0) {
    return err(macpError(ErrorCode.INVALID_REQUEST, "page_size must not be negative"));
  }
  const pageSize = Math.min(
    options.pageSize === 0 ? kernel.limits.defaultPageSize : options.pageSize,
    kernel.limits.maxPageSize,
  );
  let after = 0;
  if (options.pageToken !== "") {
    const decoded = decodePageToken(options.pageToken);
    if (decoded === undefined) {
      return err(
        macpError(ErrorCode.INVALID_REQUEST, "page_token is not a token this runtime issued"),
      );
    }
    after = decoded;
  }
  const sessions: SessionMetadata[] = [];
  let last = 0;
  let more = false;
  // Map iteration follows insertion, which is creation order (ordinals ascend).
  for (const session of kernel.table.sessions.values()) {
    if (session.ordinal <= after) continue;
    if (sessions.length === pageSize) {
      more = true;
      break;
    }
    sessions.push(session.toMetadata());
    last = session.ordinal;
  }
  return ok(
    create(ListSessionsResponseSchema, {
      sessions,
      nextPageToken: more ? encodePageToken(last) : "",
    }),
  );
}

/** A session's full state, for hosts, tests and replay checks. No authorization. */
export function inspectSession(kernel: Kernel, sessionId: string): SessionSnapshot | undefined {
  const session = kernel.table.get(sessionId);
  if (session === undefined) return undefined;
  return {
    metadata: session.toMetadata(),
    modeState: session.handler.encodeState(session.modeState),
    resolution: session.resolution,
    acceptedMessageIds: [...session.seen].sort(compareStrings),
    acceptedCount: session.incomingCount,
    suspendedMs: session.suspendedTimeAt(kernel.clock.now()),
  };
}

function encodePageToken(ordinal: number): string {
  return `p${ordinal.toString(36)}`;
}

function decodePageToken(token: string): number | undefined {
  if (!/^p[0-9a-z]{1,11}$/.test(token)) return undefined;
  const value = Number.parseInt(token.slice(1), 36);
  return Number.isSafeInteger(value) ? value : undefined;
}
