import type { Envelope } from "@macp/proto";
import { err, ok } from "neverthrow";
import { ErrorCode, macpError } from "../errors.js";
import { type Caller, type Identity, isAuthenticated } from "../identity.js";
import type { Clock, RuntimeLimits } from "../runtime-options.js";
import { checkEnvelopeShape, isBlank } from "./envelope-checks.js";
import { OK_VOID, type Outcome } from "./outcome.js";
import { RateLimiter } from "./rate-limiter.js";

/**
 * The envelope checks that run before the kernel proper (core.md ENV-1..10):
 * shape, authentication, sender, authorization and rate limits.
 */
export class Admission {
  private readonly startLimiter: RateLimiter;
  private readonly messageLimiter: RateLimiter;

  constructor(
    clock: Clock,
    private readonly limits: RuntimeLimits,
  ) {
    this.startLimiter = new RateLimiter(clock, limits.sessionStartsPerMinute);
    this.messageLimiter = new RateLimiter(clock, limits.messagesPerMinute);
  }

  /**
   * Everything Send checks before dispatch, in the protocol's order: the
   * envelope as accepted (sender filled in). Success implies an authenticated caller.
   */
  admit(envelope: Envelope | undefined, caller: Caller): Outcome<Envelope> {
    if (envelope === undefined) {
      return err(macpError(ErrorCode.INVALID_REQUEST, "SendRequest.envelope is required"));
    }
    const shape = checkEnvelopeShape(envelope, this.limits.maxPayloadBytes);
    if (shape.isErr()) return err(shape.error);
    if (!isAuthenticated(caller)) {
      return err(macpError(ErrorCode.UNAUTHENTICATED, caller.unauthenticated));
    }
    let secured = envelope;
    if (envelope.sender !== caller.sender) {
      const checked = this.checkSecurity(envelope, caller);
      if (checked.isErr()) return err(checked.error);
      secured = checked.value;
    }
    const authorized = this.checkAuthorization(secured, caller);
    if (authorized.isErr()) return err(authorized.error);
    const limited = this.checkRateLimit(secured);
    if (limited.isErr()) return err(limited.error);
    return ok(secured);
  }

  /** ENV-8: the sender is the authenticated identity; a different claim is refused. */
  checkSecurity(envelope: Envelope, identity: Identity): Outcome<Envelope> {
    if (envelope.sender === identity.sender) return ok(envelope);
    if (envelope.sender !== "") {
      return err(
        macpError(
          ErrorCode.UNAUTHENTICATED,
          `sender "${envelope.sender}" does not match the authenticated identity`,
        ),
      );
    }
    return ok({ ...envelope, sender: identity.sender });
  }

  /** ENV-9. Ambient Signals and Progress carry no mode, so allowed_modes does not apply to them. */
  checkAuthorization(envelope: Envelope, identity: Identity): Outcome<void> {
    if (envelope.messageType === "SessionStart" && !identity.canStartSessions) {
      return err(macpError(ErrorCode.FORBIDDEN, "this identity may not start sessions"));
    }
    if (identity.allowedModes !== null && !isBlank(envelope.mode)) {
      if (!identity.allowedModes.has(envelope.mode)) {
        return err(
          macpError(ErrorCode.FORBIDDEN, `this identity may not use mode "${envelope.mode}"`),
        );
      }
    }
    return OK_VOID;
  }

  /** ENV-10: SessionStarts and everything else have separate per-sender budgets. */
  checkRateLimit(envelope: Envelope): Outcome<void> {
    const limiter =
      envelope.messageType === "SessionStart" ? this.startLimiter : this.messageLimiter;
    if (limiter.tryAcquire(envelope.sender)) return OK_VOID;
    return err(
      macpError(
        ErrorCode.RATE_LIMITED,
        envelope.messageType === "SessionStart"
          ? `at most ${this.limits.sessionStartsPerMinute} SessionStarts per minute`
          : `at most ${this.limits.messagesPerMinute} messages per minute`,
      ),
    );
  }
}
