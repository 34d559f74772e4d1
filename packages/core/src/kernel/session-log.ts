import type { Envelope } from "@macp/proto";
import { err } from "neverthrow";
import { ErrorCode, macpError } from "../errors.js";
import type { RuntimeLogger } from "../runtime-options.js";
import type { LogRecord } from "../store/log-record.js";
import type { SessionStore } from "../store/session-store.js";
import { type MaybeAsync, OK_VOID, type Outcome } from "./outcome.js";

/** The kernel's side of the store port: appends as values, history by sequence. */
export class SessionLog {
  constructor(
    readonly store: SessionStore,
    private readonly logger: RuntimeLogger,
  ) {}

  /** Appends one record; synchronous when the store is. A failure is an INTERNAL_ERROR. */
  append(sessionId: string, record: LogRecord): MaybeAsync<Outcome<void>> {
    try {
      const appended = this.store.append(sessionId, record);
      if (appended instanceof Promise) {
        return appended.then(
          () => OK_VOID,
          (cause: unknown) => this.appendFailed(sessionId, cause),
        );
      }
      return OK_VOID;
    } catch (cause) {
      return this.appendFailed(sessionId, cause);
    }
  }

  private appendFailed(sessionId: string, cause: unknown): Outcome<void> {
    this.logger.error("storage append failed", {
      sessionId,
      error: cause instanceof Error ? cause.message : String(cause),
    });
    return err(macpError(ErrorCode.INTERNAL_ERROR, "the message could not be stored durably"));
  }

  /** Incoming envelopes with sequence in (afterSequence, upTo]. */
  async readIncoming(sessionId: string, afterSequence: number, upTo: number): Promise<Envelope[]> {
    const records = (await this.store.read(sessionId)) ?? [];
    const out: Envelope[] = [];
    let sequence = 0;
    for (const record of records) {
      if (record.kind !== "incoming") continue;
      sequence++;
      if (sequence > upTo) break;
      if (sequence > afterSequence) out.push(record.envelope);
    }
    return out;
  }
}
