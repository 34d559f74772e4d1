import type { ConformanceDriver } from "@macp/conformance";
import { createDevIdentity, type MacpRuntime } from "@macp/core";
import type { Ack, Envelope } from "@macp/proto";

/** An Ack as the wire would carry a refusal, so NACKs compare like network answers. */
export function nackOf(envelope: Envelope, code: string, message: string): Ack {
  return {
    $typeName: "macp.v1.Ack",
    ok: false,
    duplicate: false,
    messageId: envelope.messageId,
    sessionId: envelope.sessionId,
    acceptedAtUnixMs: 0n,
    sessionState: 0,
    error: {
      $typeName: "macp.v1.MACPError",
      code,
      message,
      sessionId: envelope.sessionId,
      messageId: envelope.messageId,
      details: new Uint8Array(0),
    },
  };
}

export async function sendAs(runtime: MacpRuntime, envelope: Envelope): Promise<Ack> {
  const result = await runtime.send(envelope, createDevIdentity(envelope.sender));
  return result.isOk() ? result.value : nackOf(envelope, result.error.code, result.error.message);
}

/**
 * Drives several runtimes that share one store: every call goes to the
 * instance `pick` chooses, policy registrations included.
 */
export function clusterDriver(
  instances: readonly MacpRuntime[],
  pick: () => number,
): ConformanceDriver {
  const admin = createDevIdentity("agent://conformance-admin");
  const choose = (): MacpRuntime => instances[pick()] as MacpRuntime;
  return {
    async registerPolicy(descriptor) {
      const runtime = choose();
      const outcome = runtime.registerPolicy(descriptor, admin);
      if (outcome.isErr() || !outcome.value.ok) {
        throw new Error(`policy refused: ${JSON.stringify(outcome)}`);
      }
      const committed = await runtime.registryCommitted?.();
      if (committed?.isErr()) throw new Error(committed.error.message);
    },
    send: (envelope) => sendAs(choose(), envelope),
    async sessionState(sessionId, asSender) {
      const metadata = await choose().getSession(sessionId, createDevIdentity(asSender));
      if (metadata.isErr()) throw new Error(metadata.error.message);
      return metadata.value.state;
    },
    async inspect(sessionId) {
      const runtime = choose();
      // Brings the replica up to the log before reading it.
      await runtime.getSession(sessionId, createDevIdentity("agent://observer"));
      const snapshot = runtime.inspectSession(sessionId);
      if (!snapshot) throw new Error("session not in memory");
      return { modeState: snapshot.modeState, resolution: snapshot.resolution };
    },
  };
}
