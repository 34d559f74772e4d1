import type { Ack, Envelope } from "@macp/proto";
import { err } from "neverthrow";
import { ErrorCode, macpError } from "../errors.js";
import type { Identity } from "../identity.js";
import type { RegistryChange, SharedSessionStore } from "../store/shared-session-store.js";
import type { Kernel } from "./kernel.js";
import type { Outcome } from "./outcome.js";
import { catchUp, decideOnReplica, loadReplica } from "./replicas.js";
import { withLock } from "./session.js";
import { processInSession } from "./session-messages.js";
import { startSession } from "./session-start.js";

// The kernel's steps that differ when instances share the store, and the
// change feed that keeps this instance's replicas, ambient bus and registries
// in step with the others.

/** A session-scoped envelope on a replica: loaded if needed, decided on the log's latest state. */
export async function sharedSessionMessage(
  kernel: Kernel,
  envelope: Envelope,
): Promise<Outcome<Ack>> {
  const loaded = await loadReplica(kernel, envelope.sessionId, true);
  if (loaded.isErr()) return err(loaded.error);
  const session = loaded.value;
  if (session === undefined) {
    return err(macpError(ErrorCode.SESSION_NOT_FOUND, `session "${envelope.sessionId}" not found`));
  }
  return withLock(session, () =>
    decideOnReplica(kernel, session, () => processInSession(kernel, session, envelope, false)),
  );
}

/** A start refused for an unknown mode or policy is judged again once the shared registry is current. */
export async function sharedStart(
  kernel: Kernel,
  shared: SharedSessionStore,
  envelope: Envelope,
  identity: Identity,
): Promise<Outcome<Ack>> {
  const started = await startSession(kernel, envelope, identity);
  if (
    started.isOk() ||
    (started.error.code !== ErrorCode.MODE_NOT_SUPPORTED &&
      started.error.code !== ErrorCode.UNKNOWN_POLICY_VERSION)
  ) {
    return started;
  }
  try {
    await shared.syncRegistry();
  } catch (cause) {
    return kernel.log.appendFailed(envelope.sessionId, cause);
  }
  return startSession(kernel, envelope, identity);
}

/**
 * Starts following the shared store: appends by any instance are applied to
 * replicas, ambient envelopes reach this instance's watchers in the cluster's
 * one order, registry changes are applied by `applyRegistryChange`. Returns
 * what stops it, once the feed listens.
 */
export async function followCluster(
  kernel: Kernel,
  shared: SharedSessionStore,
  applyRegistryChange: (change: RegistryChange) => void,
): Promise<() => void> {
  const feed = shared.follow({
    appended: (sessionId, position) => void followAppend(kernel, sessionId, position),
    ambient: (envelope) => kernel.hubs.signals.publish(envelope),
    registryChanged: applyRegistryChange,
    resync: () => void resync(kernel, shared),
  });
  await feed.ready;
  return () => feed.stop();
}

async function followAppend(kernel: Kernel, sessionId: string, position: number): Promise<void> {
  if (kernel.closed) return;
  const pending = kernel.table.pendingStarts.get(sessionId);
  if (pending !== undefined) await pending;
  const session = kernel.table.get(sessionId);
  if (session === undefined) {
    await loadReplica(kernel, sessionId, false);
    return;
  }
  if (session.logLength > position) return;
  await withLock(session, () => catchUp(kernel, session));
}

/** After notifications may have been lost (and after recovery): brings every replica up to its log. */
export async function resync(kernel: Kernel, shared: SharedSessionStore): Promise<void> {
  let lengths: ReadonlyMap<string, number>;
  try {
    lengths = await shared.logLengths();
  } catch (cause) {
    kernel.logger.warn("resync with the shared store failed", {
      error: cause instanceof Error ? cause.message : String(cause),
    });
    return;
  }
  for (const [sessionId, length] of lengths) {
    if (kernel.closed) return;
    const session = kernel.table.get(sessionId);
    if (session === undefined || session.logLength < length) {
      await followAppend(kernel, sessionId, length - 1);
    }
  }
}
