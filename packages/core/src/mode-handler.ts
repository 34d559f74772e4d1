import type { Envelope, ModeDescriptor, SessionStartPayload } from "@macp/proto";
import type { Result } from "neverthrow";
import type { MacpError } from "./errors.js";
import type { JsonValue } from "./json.js";
import type { PolicyDefinition } from "./policy/policy-definition.js";
import type { PolicyRulesCheck } from "./policy/rules-validation.js";

/** What a mode may read about the session it runs in. Immutable for the session's life. */
export interface SessionView {
  readonly sessionId: string;
  readonly mode: string;
  /** The authenticated sender of the SessionStart. */
  readonly initiator: string;
  /** As declared in the SessionStart, original strings. */
  readonly participants: readonly string[];
  /** The bound mode version (the payload's, or the descriptor's when the payload left it empty). */
  readonly modeVersion: string;
  readonly configurationVersion: string;
  /** The resolved policy id, e.g. "policy.default". */
  readonly policyVersion: string;
  /** The bound policy definition. */
  readonly policy: PolicyDefinition;
}

/** Per-message context: the runtime's acceptance clock, never the envelope timestamp. */
export interface MessageContext {
  readonly session: SessionView;
  /** Runtime wall clock (ms) at which this message is being accepted. Recorded in the log, so replay sees the same value. */
  readonly acceptedAtMs: number;
  /** True for messages the runtime itself injects (e.g. a handoff implicit accept). */
  readonly synthetic: boolean;
}

/** A message a mode asks the runtime to inject when its time comes (see {@link ModeHandler.dueMessages}). */
export interface DueMessage {
  readonly messageType: string;
  /** Deterministic id, e.g. "implicit-accept:<handoff_id>". */
  readonly messageId: string;
  /** The participant on whose behalf the runtime speaks. */
  readonly sender: string;
  readonly payload: Uint8Array;
}

/** The outcome of a mode accepting a message. */
export interface ModeStep<S> {
  /** The new state; must be a new value whenever it differs (the old one is kept if the append fails). */
  readonly state: S;
  /** Present when the message resolves the session: the resolution bytes. */
  readonly resolution?: Uint8Array;
}

/**
 * A coordination mode as a pure state machine. The session layer has already
 * checked session state, dedup and TTL; the mode decides who may send what and
 * what it means. Handlers must not mutate the state they are given.
 */
export interface ModeHandler<S = unknown> {
  /** Checks the SessionStart against mode rules (participants etc.) and returns the initial state. */
  onSessionStart(session: SessionView, start: SessionStartPayload): Result<S, MacpError>;
  /** The mode's sender authorization; runs before the payload is decoded. */
  authorizeSender(ctx: MessageContext, state: S, envelope: Envelope): Result<void, MacpError>;
  /** Validates and applies one message. */
  onMessage(ctx: MessageContext, state: S, envelope: Envelope): Result<ModeStep<S>, MacpError>;
  /**
   * The state in the JSON shape of the reference runtime (modes.md §0.7): fields
   * in declaration order, keyed maps sorted, bytes as arrays of integers.
   * Passthrough modes return their raw bytes as a Uint8Array.
   */
  encodeState(state: S): JsonValue | Uint8Array;
  /** The earliest time (ms) at which {@link dueMessages} will return something, if any. */
  nextDueAt?(session: SessionView, state: S): number | undefined;
  /** Messages that are due at `nowMs`; the runtime accepts them like any other (synthetic = true). */
  dueMessages?(session: SessionView, state: S, nowMs: number): readonly DueMessage[];
  /**
   * How RegisterPolicy checks the rules of a policy for this mode (modes.md
   * §9.5). Without it any rules object is accepted. The mode evaluates the
   * bound policy itself (`ctx.session.policy`), typically at Commitment.
   */
  readonly policyRules?: PolicyRulesCheck;
}

/** A registered mode: its descriptor, its handler and how strictly SessionStart is checked. */
export interface ModeEntry {
  readonly descriptor: ModeDescriptor;
  readonly handler: ModeHandler;
  /** Strict modes get the canonical SessionStart checks (ttl, versions, participants). */
  readonly strict: boolean;
  /** Standards-track modes are listed by ListModes; the others by ListExtModes. */
  readonly standardsTrack: boolean;
  /** Built-in modes cannot be unregistered. */
  readonly builtIn: boolean;
}
