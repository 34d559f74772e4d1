// Envelope builders and small helpers shared by the tests of every package
// (published as `@macp/core/testing`, see ./index.ts).
import { create, toBinary } from "@bufbuild/protobuf";
import {
  CommitmentPayloadSchema,
  decision,
  type Envelope,
  EnvelopeSchema,
  type ModeDescriptor,
  SessionStartPayloadSchema,
} from "@macp/proto";
import { type Caller, createDevIdentity, type Identity } from "../identity.js";
import { createRuntime } from "../runtime.js";
import type { MacpRuntime } from "../runtime-api.js";
import type { RuntimeOptions } from "../runtime-options.js";
import { createMemoryStore, type MemoryStore } from "../store/memory-store.js";
import { SimulatedClock } from "./simulated-clock.js";

export const DECISION = "macp.mode.decision.v1";
/** Where the kernel tests start their clock. */
export const T0 = 1_750_000_000_000;

export interface Harness {
  runtime: MacpRuntime;
  clock: SimulatedClock;
  store: MemoryStore;
  as(sender: string): Identity;
}

export function harness(options: Partial<RuntimeOptions> = {}): Harness {
  const clock = new SimulatedClock(T0);
  const store = createMemoryStore();
  const runtime = createRuntime({ clock, store, ...options });
  return { runtime, clock, store, as: (sender) => createDevIdentity(sender) };
}

let counter = 0;
/** A fresh canonical UUIDv4 (deterministic per test run). */
export function sessionId(): string {
  counter++;
  const hex = counter.toString(16).padStart(12, "0");
  return `00000000-0000-4000-8000-${hex}`;
}

export function envelope(fields: Partial<Omit<Envelope, "$typeName" | "$unknown">>): Envelope {
  return create(EnvelopeSchema, {
    macpVersion: "1.0",
    mode: DECISION,
    messageType: "Proposal",
    messageId: `m-${++counter}`,
    ...fields,
  });
}

export interface StartOptions {
  participants?: string[];
  ttlMs?: number;
  policyVersion?: string;
  maxSuspendMs?: number;
  modeVersion?: string;
  configurationVersion?: string;
  extensions?: Record<string, Uint8Array>;
  contextId?: string;
}

export function startPayload(options: StartOptions = {}): Uint8Array {
  return toBinary(
    SessionStartPayloadSchema,
    create(SessionStartPayloadSchema, {
      intent: "test",
      participants: options.participants ?? ["agent://a", "agent://b"],
      modeVersion: options.modeVersion ?? "1.0.0",
      configurationVersion: options.configurationVersion ?? "cfg-1",
      policyVersion: options.policyVersion ?? "",
      ttlMs: BigInt(options.ttlMs ?? 60_000),
      maxSuspendMs: BigInt(options.maxSuspendMs ?? 0),
      extensions: options.extensions ?? {},
      contextId: options.contextId ?? "",
    }),
  );
}

export function startEnvelope(
  id: string,
  sender: string,
  options: StartOptions & { mode?: string; messageId?: string; timestampUnixMs?: bigint } = {},
): Envelope {
  return envelope({
    sessionId: id,
    sender,
    mode: options.mode ?? DECISION,
    messageType: "SessionStart",
    messageId: options.messageId ?? `start-${id}`,
    timestampUnixMs: options.timestampUnixMs ?? 0n,
    payload: startPayload(options),
  });
}

export function proposalEnvelope(
  id: string,
  sender: string,
  proposalId = "p1",
  messageId?: string,
) {
  return envelope({
    sessionId: id,
    sender,
    messageType: "Proposal",
    ...(messageId ? { messageId } : {}),
    payload: toBinary(
      decision.ProposalPayloadSchema,
      create(decision.ProposalPayloadSchema, { proposalId, option: "ship", rationale: "ready" }),
    ),
  });
}

export function voteEnvelope(id: string, sender: string, vote = "APPROVE", proposalId = "p1") {
  return envelope({
    sessionId: id,
    sender,
    messageType: "Vote",
    payload: toBinary(
      decision.VotePayloadSchema,
      create(decision.VotePayloadSchema, { proposalId, vote, reason: "r" }),
    ),
  });
}

export function commitmentEnvelope(
  id: string,
  sender: string,
  fields: { action?: string; outcomePositive?: boolean; mode?: string } = {},
) {
  return envelope({
    sessionId: id,
    sender,
    mode: fields.mode ?? DECISION,
    messageType: "Commitment",
    payload: toBinary(
      CommitmentPayloadSchema,
      create(CommitmentPayloadSchema, {
        commitmentId: "c1",
        action: fields.action ?? "decision.selected",
        authorityScope: "test",
        reason: "done",
        modeVersion: "1.0.0",
        configurationVersion: "cfg-1",
        policyVersion: "",
        outcomePositive: fields.outcomePositive ?? true,
      }),
    ),
  });
}

/** Sends and unwraps the Ack, failing the test with the error text if refused. */
/**
 * The descriptor of an extension mode whose participants exchange `Message`
 * until a `Commitment` ends the session: what registry tests register.
 */
export function extModeDescriptor(mode: string, title = ""): ModeDescriptor {
  return {
    $typeName: "macp.v1.ModeDescriptor",
    mode,
    modeVersion: "1.0.0",
    title,
    description: "",
    determinismClass: "",
    participantModel: "",
    messageTypes: ["Message", "Commitment"],
    terminalMessageTypes: ["Commitment"],
    schemaUris: {},
  };
}

export async function accepted(runtime: MacpRuntime, env: Envelope, as?: Identity) {
  const result = await runtime.send(env, as ?? createDevIdentity(env.sender));
  if (result.isErr()) {
    throw new Error(`expected acceptance, got ${result.error.code}: ${result.error.message}`);
  }
  return result.value;
}

/** Sends and returns the refusal code, failing the test if accepted. */
export async function refusal(runtime: MacpRuntime, env: Envelope | undefined, as?: Caller) {
  const result = await runtime.send(env, as ?? createDevIdentity(env?.sender ?? "agent://x"));
  if (result.isOk()) throw new Error("expected a refusal, the envelope was accepted");
  return result.error.code;
}

/** Collects up to `count` items from an async iterable. */
export async function take<T>(iterable: AsyncIterable<T>, count: number): Promise<T[]> {
  const out: T[] = [];
  if (count === 0) return out;
  for await (const item of iterable) {
    out.push(item);
    if (out.length >= count) break;
  }
  return out;
}

export { createMemoryStore };
