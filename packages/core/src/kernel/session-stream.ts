import type { Ack, Envelope, StreamSessionRequest } from "@macp/proto";
import { SessionState } from "@macp/proto";
import { ErrorCode, type MacpError, macpError } from "../errors.js";
import type { Identity } from "../identity.js";
import type { SessionStream, SessionStreamOutput } from "../runtime-api.js";
import type { RuntimeObserver } from "../runtime-observer.js";
import type { RuntimeLimits } from "../runtime-options.js";
import { type Hub, type Sink, Subscription } from "../streams/hub.js";
import { checkEnvelopeShape, isBlank } from "./envelope-checks.js";
import type { MaybeAsync, Outcome } from "./outcome.js";
import type { Session } from "./session.js";
import type { SequencedEnvelope } from "./session-machine.js";

/** The part of the kernel a session stream drives: the checks and dispatch of Send, lookups, hubs, history. */
export interface KernelForStreams {
  readonly limits: RuntimeLimits;
  readonly observer: RuntimeObserver | undefined;
  checkSecurity(envelope: Envelope, identity: Identity): Outcome<Envelope>;
  checkAuthorization(envelope: Envelope, identity: Identity): Outcome<void>;
  checkRateLimit(envelope: Envelope): Outcome<void>;
  dispatch(envelope: Envelope, identity: Identity): MaybeAsync<Outcome<Ack>>;
  /** The session with lazy expiry applied, or undefined. */
  lookupSession(sessionId: string): Promise<Outcome<Session | undefined>>;
  sessionHub(sessionId: string): Hub<SequencedEnvelope>;
  releaseHub(sessionId: string): void;
  readIncoming(sessionId: string, afterSequence: number, upTo: number): Promise<Envelope[]>;
}

/**
 * Errors that end a StreamSession call rather than travelling inline (core.md
 * STR-10: the codes whose gRPC status is UNAUTHENTICATED, INTERNAL,
 * RESOURCE_EXHAUSTED, INVALID_ARGUMENT, NOT_FOUND or ALREADY_EXISTS).
 */
export function endsStream(code: ErrorCode): boolean {
  switch (code) {
    case ErrorCode.UNAUTHENTICATED:
    case ErrorCode.INTERNAL_ERROR:
    case ErrorCode.PAYLOAD_TOO_LARGE:
    case ErrorCode.RATE_LIMITED:
    case ErrorCode.INVALID_SESSION_ID:
    case ErrorCode.INVALID_POLICY_DEFINITION:
    case ErrorCode.SESSION_ALREADY_EXISTS:
    case ErrorCode.INVALID_REQUEST:
    case ErrorCode.NOT_FOUND:
    case ErrorCode.SUBSCRIBER_LAGGED:
      return true;
    case ErrorCode.FORBIDDEN:
    case ErrorCode.SESSION_NOT_FOUND:
    case ErrorCode.SESSION_NOT_OPEN:
    case ErrorCode.INVALID_ENVELOPE:
    case ErrorCode.UNSUPPORTED_PROTOCOL_VERSION:
    case ErrorCode.MODE_NOT_SUPPORTED:
    case ErrorCode.UNKNOWN_POLICY_VERSION:
    case ErrorCode.POLICY_DENIED:
    case ErrorCode.READ_ONLY:
      return false;
  }
}

/**
 * The server side of one StreamSession call: one stream, one session. Frames
 * are handled one at a time in arrival order; accepted envelopes of the bound
 * session (from any sender, on any channel) flow to `outputs` in acceptance order.
 */
export class SessionStreamHandler implements SessionStream {
  private readonly out: Subscription<SessionStreamOutput>;
  private bound: string | undefined;
  private detach: (() => void) | undefined;
  /** Live envelopes up to this sequence were already delivered by a replay. */
  private deliveredUpTo = 0;
  /** Live envelopes that arrive while a replay is being delivered. */
  private heldBack: SequencedEnvelope[] | undefined;
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly kernel: KernelForStreams,
    private readonly identity: Identity,
    signal: AbortSignal | undefined,
    onClose: () => void,
  ) {
    this.out = new Subscription<SessionStreamOutput>(
      kernel.limits.sessionStreamBuffer,
      "error",
      () => {
        this.unbind();
        onClose();
      },
      signal,
    );
  }

  get outputs(): AsyncIterable<SessionStreamOutput> {
    return this.out;
  }

  push(frame: StreamSessionRequest): Promise<void> {
    this.kernel.observer?.streamFrame?.(frame.envelope !== undefined ? "envelope" : "subscribe");
    const run = this.queue.then(() => (this.out.isEnded ? undefined : this.handle(frame)));
    this.queue = run.catch(() => {});
    return run;
  }

  end(): void {
    void this.queue.then(() => this.out.end());
  }

  private async handle(frame: StreamSessionRequest): Promise<void> {
    if (frame.subscribeSessionId !== "") {
      if (frame.envelope !== undefined) {
        return this.terminate(
          ErrorCode.INVALID_REQUEST,
          "a frame carries either an envelope or a subscription, not both",
        );
      }
      return this.subscribe(frame.subscribeSessionId, frame.afterSequence);
    }
    if (frame.envelope === undefined) {
      return this.terminate(
        ErrorCode.INVALID_REQUEST,
        "a frame needs an envelope or a subscription",
      );
    }
    return this.submit(frame.envelope);
  }

  /** STR-8 pre-checks, then the kernel exactly as Send. */
  private async submit(envelope: Envelope): Promise<void> {
    const shape = checkEnvelopeShape(envelope, this.kernel.limits.maxPayloadBytes);
    if (shape.isErr()) return this.report(shape.error, envelope);
    if (isBlank(envelope.sessionId)) {
      return this.terminate(
        ErrorCode.INVALID_REQUEST,
        "session_id is required on a stream; send ambient Signals and Progress with Send",
      );
    }
    if (isBlank(envelope.mode))
      return this.terminate(ErrorCode.INVALID_REQUEST, "mode is required");
    if (this.bound !== undefined && this.bound !== envelope.sessionId) {
      return this.terminate(
        ErrorCode.INVALID_REQUEST,
        `this stream is bound to session "${this.bound}"`,
      );
    }
    const secured = this.kernel.checkSecurity(envelope, this.identity);
    if (secured.isErr()) return this.fail(secured.error);
    const accepted = secured.value;
    if (accepted.messageType !== "SessionStart") {
      const found = await this.kernel.lookupSession(accepted.sessionId);
      if (found.isErr()) return this.fail(found.error);
      const session = found.value;
      if (session !== undefined && session.view.mode !== accepted.mode) {
        return this.terminate(
          ErrorCode.INVALID_ENVELOPE,
          `mode "${accepted.mode}" does not match the session's mode`,
        );
      }
      if (session !== undefined && session.state !== SessionState.OPEN) {
        return this.terminate(
          ErrorCode.SESSION_NOT_OPEN,
          `session "${accepted.sessionId}" is ${SessionState[session.state]}`,
        );
      }
    }
    const authorized = this.kernel.checkAuthorization(accepted, this.identity);
    if (authorized.isErr()) return this.report(authorized.error, accepted);
    const limited = this.kernel.checkRateLimit(accepted);
    if (limited.isErr()) return this.fail(limited.error);
    if (this.bound === undefined) this.bind(accepted.sessionId);
    const outcome = await this.kernel.dispatch(accepted, this.identity);
    if (outcome.isErr()) this.report(outcome.error, accepted);
  }

  /** SUB-1..SUB-13: replay history after `afterSequence`, then follow live. */
  private async subscribe(sessionId: string, afterSequence: bigint): Promise<void> {
    if (this.bound !== undefined && this.bound !== sessionId) {
      return this.terminate(
        ErrorCode.INVALID_REQUEST,
        `this stream is bound to session "${this.bound}"`,
      );
    }
    const found = await this.kernel.lookupSession(sessionId);
    if (found.isErr()) return this.fail(found.error);
    const session = found.value;
    if (session === undefined) {
      return this.terminate(ErrorCode.NOT_FOUND, `session "${sessionId}" not found`);
    }
    if (!session.isVisibleTo(this.identity)) {
      this.out.push({
        kind: "error",
        error: macpError(
          ErrorCode.FORBIDDEN,
          "only the initiator, participants and observers may subscribe",
        ),
        sessionId,
        messageId: "",
      });
      return;
    }
    // Attach to the live feed before reading history, so nothing falls between the two.
    this.heldBack = [];
    if (this.bound === undefined) this.bind(sessionId);
    const upTo = session.incomingCount;
    const after = afterSequence > BigInt(upTo) ? upTo : Number(afterSequence);
    try {
      const history = await this.kernel.readIncoming(sessionId, after, upTo);
      for (const envelope of history) {
        await this.out.waitForRoom();
        if (this.out.isEnded) return;
        this.out.push({ kind: "envelope", envelope });
      }
    } catch (cause) {
      return this.fail(
        macpError(
          ErrorCode.INTERNAL_ERROR,
          `history could not be read: ${cause instanceof Error ? cause.message : String(cause)}`,
        ),
      );
    } finally {
      const held = this.heldBack ?? [];
      this.heldBack = undefined;
      this.deliveredUpTo = Math.max(this.deliveredUpTo, upTo);
      for (const item of held) this.deliverLive(item);
    }
  }

  private bind(sessionId: string): void {
    this.bound = sessionId;
    const hub = this.kernel.sessionHub(sessionId);
    const sink: Sink<SequencedEnvelope> = {
      push: (item) => {
        if (this.heldBack === undefined) {
          this.deliverLive(item);
        } else if (this.heldBack.length >= this.kernel.limits.sessionStreamBuffer) {
          this.fail(
            macpError(ErrorCode.SUBSCRIBER_LAGGED, "live traffic outran the history replay"),
          );
        } else {
          this.heldBack.push(item);
        }
      },
      end: () => this.out.end(),
    };
    const remove = hub.attach(sink);
    this.detach = () => {
      remove();
      this.kernel.releaseHub(sessionId);
    };
  }

  private unbind(): void {
    this.detach?.();
    this.detach = undefined;
  }

  private deliverLive(item: SequencedEnvelope): void {
    if (item.sequence <= this.deliveredUpTo) return;
    this.deliveredUpTo = item.sequence;
    this.out.push({ kind: "envelope", envelope: item.envelope });
  }

  /** Inline or terminal, by code (STR-10). */
  private report(error: MacpError, envelope: Envelope): void {
    if (endsStream(error.code)) {
      this.fail(error);
      return;
    }
    this.out.push({
      kind: "error",
      error,
      sessionId: this.bound ?? envelope.sessionId,
      messageId: envelope.messageId,
    });
    this.kernel.observer?.streamRefused?.(envelope, error, this.identity);
  }

  /**
   * Ends the stream, whatever the code: the STR-8 pre-checks end it even for
   * codes that travel inline once the kernel runs (mode mismatch, not OPEN).
   */
  private terminate(code: ErrorCode, message: string): void {
    this.fail(macpError(code, message));
  }

  private fail(error: MacpError): void {
    this.out.fail(error);
  }
}
