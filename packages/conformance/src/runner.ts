import { create, fromBinary, toBinary, toJson } from "@bufbuild/protobuf";
import {
  type Ack,
  CommitmentPayloadSchema,
  type Envelope,
  EnvelopeSchema,
  type PolicyDescriptor,
  PolicyDescriptorSchema,
  SessionStartPayloadSchema,
  SessionState,
} from "@macp/proto";
import { encodeVectorPayload } from "./payloads.js";
import { type ConformanceVector, subsetMismatch } from "./vector.js";

/** What a runtime under test must offer the runner. Network and in-process drivers implement it. */
export interface ConformanceDriver {
  /** Registers a policy with registry-admin rights. */
  registerPolicy(descriptor: PolicyDescriptor): Promise<void>;
  /** Sends one envelope authenticated as `envelope.sender`; NACKs are returned, not thrown. */
  send(envelope: Envelope): Promise<Ack>;
  /** The session's state as a participant (`asSender`) sees it. */
  sessionState(sessionId: string, asSender: string): Promise<SessionState>;
  /** Optional deeper inspection (in-process drivers): mode state JSON and resolution bytes. */
  inspect?(sessionId: string): Promise<{ modeState: unknown; resolution: Uint8Array | undefined }>;
  /** Optional: rebuild the session from its log and say what differs from the live one (undefined = equal). */
  replayDifference?(sessionId: string): Promise<string | undefined>;
}

export interface StepResult {
  readonly index: number;
  readonly messageType: string;
  readonly expect: "accept" | "reject";
  readonly ack: Ack;
}

/** A failure of the runtime under test against one vector, with a precise reason. */
export class ConformanceFailure extends Error {
  constructor(vector: string, reason: string) {
    super(`${vector}: ${reason}`);
    this.name = "ConformanceFailure";
  }
}

const FINAL_STATES: Record<ConformanceVector["expected_final_state"], SessionState> = {
  Open: SessionState.OPEN,
  Suspended: SessionState.SUSPENDED,
  Resolved: SessionState.RESOLVED,
  Expired: SessionState.EXPIRED,
  Cancelled: SessionState.CANCELLED,
};

/**
 * Runs one vector: registers its policy, starts the session as the initiator
 * (message id m0), sends m1..mN checking each accept/reject and error code,
 * then checks the final state, resolution, mode state and replay equivalence.
 * Throws {@link ConformanceFailure} on the first difference.
 */
export async function runVector(
  vector: ConformanceVector,
  driver: ConformanceDriver,
  options: { sessionId: string; now?: () => number },
): Promise<StepResult[]> {
  const now = options.now ?? (() => Date.now());
  const fail = (reason: string): never => {
    throw new ConformanceFailure(vector.name, reason);
  };
  if (vector.policy) {
    await driver.registerPolicy(
      create(PolicyDescriptorSchema, {
        policyId: vector.policy.policy_id,
        mode: vector.policy.mode,
        description: vector.policy.description,
        rules: JSON.stringify(vector.policy.rules),
        schemaVersion: vector.policy.schema_version,
      }),
    );
  }
  const envelope = (messageType: string, messageId: string, sender: string, payload: Uint8Array) =>
    create(EnvelopeSchema, {
      macpVersion: "1.0",
      mode: vector.mode,
      messageType,
      messageId,
      sessionId: options.sessionId,
      sender,
      timestampUnixMs: BigInt(now()),
      payload,
    });
  const start = toBinary(
    SessionStartPayloadSchema,
    create(SessionStartPayloadSchema, {
      intent: "conformance",
      participants: [...vector.participants],
      modeVersion: vector.mode_version,
      configurationVersion: vector.configuration_version,
      policyVersion: vector.policy_version ?? "",
      ttlMs: BigInt(vector.ttl_ms),
      maxSuspendMs: 0n,
    }),
  );
  const startAck = await driver.send(envelope("SessionStart", "m0", vector.initiator, start));
  if (!startAck.ok)
    fail(`SessionStart refused: ${startAck.error?.code} ${startAck.error?.message}`);

  const steps: StepResult[] = [];
  for (const [i, message] of vector.messages.entries()) {
    const payload = encodeVectorPayload(message.payload_type, message.payload);
    const ack = await driver.send(
      envelope(message.message_type, `m${i + 1}`, message.sender, payload),
    );
    const where = `message ${i + 1} (${message.message_type} from ${message.sender})`;
    if (message.expect === "accept" && !ack.ok) {
      fail(`${where} was refused with ${ack.error?.code}: ${ack.error?.message}`);
    }
    if (message.expect === "reject") {
      if (ack.ok) fail(`${where} was accepted, expected a rejection`);
      if (message.expected_error_code && ack.error?.code !== message.expected_error_code) {
        fail(
          `${where} was refused with ${ack.error?.code}, expected ${message.expected_error_code}`,
        );
      }
    }
    steps.push({ index: i + 1, messageType: message.message_type, expect: message.expect, ack });
  }

  const state = await driver.sessionState(options.sessionId, vector.initiator);
  if (state !== FINAL_STATES[vector.expected_final_state]) {
    fail(`final state ${SessionState[state]}, expected ${vector.expected_final_state}`);
  }
  if (driver.inspect) {
    const inspected = await driver.inspect(options.sessionId);
    if (vector.expect_resolution_present !== undefined) {
      const present = inspected.resolution !== undefined;
      if (present !== vector.expect_resolution_present) {
        fail(`resolution present = ${present}, expected ${vector.expect_resolution_present}`);
      }
    }
    if (vector.expected_resolution) {
      if (inspected.resolution === undefined) fail("no resolution, but one was expected");
      const resolution = toJson(
        CommitmentPayloadSchema,
        fromBinary(CommitmentPayloadSchema, inspected.resolution as Uint8Array),
        { useProtoFieldName: true, alwaysEmitImplicit: true },
      );
      const mismatch = subsetMismatch(resolution, vector.expected_resolution);
      if (mismatch) fail(`resolution differs at ${mismatch}: ${JSON.stringify(resolution)}`);
    }
    if (vector.expected_mode_state) {
      const mismatch = subsetMismatch(inspected.modeState, vector.expected_mode_state);
      if (mismatch) {
        fail(`mode state differs at ${mismatch}: ${JSON.stringify(inspected.modeState)}`);
      }
    }
  }
  if (driver.replayDifference && vector.verify_replay_equivalence !== false) {
    const difference = await driver.replayDifference(options.sessionId);
    if (difference) fail(`replay differs from the live session: ${difference}`);
  }
  return steps;
}
