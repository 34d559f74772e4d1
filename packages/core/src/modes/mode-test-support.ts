// Test helpers for driving mode handlers directly, the way the kernel does:
// authorizeSender, then onMessage, with frozen input state. Used by *.test.ts only.

import { create, type DescMessage, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import {
  CommitmentPayloadSchema,
  type Envelope,
  EnvelopeSchema,
  type SessionStartPayload,
  SessionStartPayloadSchema,
} from "@macp/proto";
import type { Result } from "neverthrow";
import type { MacpError } from "../errors.js";
import type { JsonObject, JsonValue } from "../json.js";
import type { MessageContext, ModeHandler, ModeStep, SessionView } from "../mode-handler.js";
import type { PolicyDefinition } from "../policy/policy-definition.js";
import { freezePolicy } from "../policy/policy-descriptor.js";
import { DEFAULT_POLICY } from "../policy/policy-registry.js";
import { PersistentList } from "./persistent-list.js";
import { PersistentMap } from "./persistent-map.js";
import { PersistentNestedMap } from "./persistent-nested-map.js";
import { serializeModeState } from "./state-json.js";

export function session(overrides: Partial<SessionView> = {}): SessionView {
  return {
    sessionId: "s1",
    mode: "macp.mode.decision.v1",
    initiator: "agent://orchestrator",
    participants: ["agent://orchestrator", "agent://a", "agent://b"],
    modeVersion: "1.0.0",
    configurationVersion: "cfg-1",
    policyVersion: DEFAULT_POLICY.policyId,
    policy: DEFAULT_POLICY,
    ...overrides,
  };
}

/** A policy definition with these rules, as an evaluator receives it. */
export function testPolicy(rules: JsonObject, schemaVersion = 1, mode = "*"): PolicyDefinition {
  return {
    policyId: "policy.test",
    mode,
    description: "",
    rules,
    schemaVersion,
    registeredAtUnixMs: 0,
  };
}

/** A session bound to an inline policy with these rules. */
export function withPolicy(
  base: SessionView,
  rules: JsonObject,
  options: { schemaVersion?: number; policyId?: string } = {},
): SessionView {
  const policy: PolicyDefinition = freezePolicy(
    {
      policyId: options.policyId ?? "policy.test",
      mode: base.mode,
      description: "test policy",
      rules,
      schemaVersion: options.schemaVersion ?? 1,
    },
    0,
  );
  return { ...base, policy, policyVersion: policy.policyId };
}

export function encode<Desc extends DescMessage>(
  schema: Desc,
  init: MessageInitShape<Desc>,
): Uint8Array {
  return toBinary(schema, create(schema, init));
}

export function commitment(
  view: SessionView,
  overrides: MessageInitShape<typeof CommitmentPayloadSchema> = {},
): Uint8Array {
  return encode(CommitmentPayloadSchema, {
    commitmentId: "c1",
    action: "done",
    authorityScope: "session",
    reason: "because",
    modeVersion: view.modeVersion,
    policyVersion: view.policyVersion,
    configurationVersion: view.configurationVersion,
    outcomePositive: true,
    ...overrides,
  });
}

let messageCounter = 0;

export function envelope(
  view: SessionView,
  messageType: string,
  sender: string,
  payload: Uint8Array,
): Envelope {
  messageCounter++;
  return create(EnvelopeSchema, {
    macpVersion: "1.0",
    mode: view.mode,
    messageType,
    messageId: `m${messageCounter}`,
    sessionId: view.sessionId,
    sender,
    timestampUnixMs: 1n,
    payload,
  });
}

export function startPayload(view: SessionView): SessionStartPayload {
  return create(SessionStartPayloadSchema, {
    intent: "test",
    participants: [...view.participants],
    modeVersion: view.modeVersion,
    configurationVersion: view.configurationVersion,
    policyVersion: view.policyVersion,
    ttlMs: 60_000n,
  });
}

/**
 * Freezes objects and arrays throughout, and makes Maps refuse writes, so a
 * handler that mutates its input state throws instead of passing silently.
 */
export function deepFreeze<T>(value: T): T {
  // Persistent collections share a backing store with their newer versions, which
  // must stay writable; each version is immutable by construction, so freeze the
  // version object and the values it holds.
  if (value instanceof PersistentMap) {
    if (Object.isFrozen(value)) return value;
    for (const item of value.values()) deepFreeze(item);
    return Object.freeze(value);
  }
  if (value instanceof PersistentNestedMap) {
    if (Object.isFrozen(value)) return value;
    for (const row of value.values()) for (const item of row.values()) deepFreeze(item);
    return Object.freeze(value);
  }
  if (value instanceof PersistentList) {
    if (Object.isFrozen(value)) return value;
    for (const item of value) deepFreeze(item);
    return Object.freeze(value);
  }
  if (value instanceof Map) {
    if (Object.isFrozen(value)) return value;
    for (const method of ["set", "delete", "clear"] as const) {
      Object.defineProperty(value, method, {
        value: () => {
          throw new TypeError(`mode state Map mutated via ${method}`);
        },
      });
    }
    for (const item of value.values()) deepFreeze(item);
    Object.freeze(value);
    return value;
  }
  // Typed arrays cannot be frozen; their contents are compared through encodeState instead.
  if (value === null || typeof value !== "object" || ArrayBuffer.isView(value)) return value;
  for (const item of Object.values(value)) deepFreeze(item);
  return Object.freeze(value);
}

export interface SendOptions {
  readonly acceptedAtMs?: number;
  readonly synthetic?: boolean;
}

/**
 * Holds a session and its mode state and feeds messages through the handler
 * like the kernel: authorization first, then the mode, state replaced only on
 * success. Every call checks that the handler left its input untouched.
 */
export class ModeDriver<S> {
  state: S;
  resolution: Uint8Array | undefined;

  constructor(
    readonly handler: ModeHandler<S>,
    readonly view: SessionView,
    initial?: S,
  ) {
    if (initial !== undefined) {
      this.state = initial;
    } else {
      const started = handler.onSessionStart(view, startPayload(view));
      if (started.isErr()) throw new Error(`session start failed: ${started.error.message}`);
      this.state = started.value;
    }
  }

  send(
    messageType: string,
    sender: string,
    payload: Uint8Array,
    options: SendOptions = {},
  ): Result<ModeStep<S>, MacpError> {
    return this.sendEnvelope(envelope(this.view, messageType, sender, payload), options);
  }

  sendEnvelope(message: Envelope, options: SendOptions = {}): Result<ModeStep<S>, MacpError> {
    const ctx: MessageContext = {
      session: this.view,
      acceptedAtMs: options.acceptedAtMs ?? 1_000,
      synthetic: options.synthetic ?? false,
    };
    const input = deepFreeze(this.state);
    const before = this.text();
    const result = this.handler
      .authorizeSender(ctx, input, message)
      .andThen(() => this.handler.onMessage(ctx, input, message));
    if (this.text() !== before) throw new Error(`${message.messageType} mutated the input state`);
    if (result.isOk()) {
      this.state = result.value.state;
      if (result.value.resolution !== undefined) this.resolution = result.value.resolution;
    }
    return result;
  }

  /** The encoded state as the JSON value the kernel would expose. */
  json(): JsonValue {
    const encoded = this.handler.encodeState(this.state);
    if (encoded instanceof Uint8Array) throw new Error("state is raw bytes");
    return encoded;
  }

  text(): string {
    return new TextDecoder().decode(serializeModeState(this.handler.encodeState(this.state)));
  }
}

/** The error code of a result, or "ok". */
export function outcome(result: Result<unknown, MacpError>): string {
  return result.match(
    () => "ok",
    (error) => error.code,
  );
}
