import type { ModeDescriptor, ParticipantActivity, SessionMetadata } from "@macp/proto";
import { SessionState } from "@macp/proto";
import type { Identity } from "../identity.js";
import type { ModeHandler, SessionView } from "../mode-handler.js";

interface Activity {
  lastMessageAtMs: number;
  count: number;
}

/**
 * One session's live state. Mutated only by the runtime, inside the session's
 * lock, after the corresponding record is durably appended.
 */
export class Session {
  state: SessionState = SessionState.OPEN;
  modeState: unknown;
  resolution: Uint8Array | undefined;
  expiresAtMs: number;
  /** Cumulative suspended time of finished suspensions. */
  suspendedTotalMs = 0;
  /** Set while SUSPENDED. */
  suspendedAtMs: number | undefined;
  /** When the session reached a terminal state; drives eviction. */
  endedAtMs: number | undefined;
  /** message_ids of every accepted envelope (IDEM-2). */
  readonly seen = new Set<string>();
  /** Accepted incoming envelopes so far; the next one gets sequence `incomingCount + 1`. */
  incomingCount = 0;
  /** Records in the session's log so far (incoming and internal): the position of the next append. */
  logLength = 0;
  private activity: Map<string, Activity> | undefined;
  /** Tail of the per-session lock (see withSessionLock). */
  lockTail: Promise<void> | undefined;

  constructor(
    readonly view: SessionView,
    readonly handler: ModeHandler,
    readonly descriptor: ModeDescriptor,
    readonly strict: boolean,
    readonly startedAtMs: number,
    expiresAtMs: number,
    readonly maxSuspendMs: number,
    readonly contextId: string,
    readonly extensionKeys: readonly string[],
    /** Creation order, for ListSessions paging. */
    readonly ordinal: number,
    modeState: unknown,
  ) {
    this.expiresAtMs = expiresAtMs;
    this.modeState = modeState;
  }

  get isTerminal(): boolean {
    return (
      this.state === SessionState.RESOLVED ||
      this.state === SessionState.EXPIRED ||
      this.state === SessionState.CANCELLED
    );
  }

  recordActivity(sender: string, atMs: number): void {
    this.activity ??= new Map();
    const entry = this.activity.get(sender);
    if (entry) {
      entry.count++;
      entry.lastMessageAtMs = atMs;
    } else {
      this.activity.set(sender, { lastMessageAtMs: atMs, count: 1 });
    }
  }

  /** Suspended time including the running suspension (LC-13). */
  suspendedTimeAt(nowMs: number): number {
    return (
      this.suspendedTotalMs +
      (this.suspendedAtMs === undefined ? 0 : Math.max(0, nowMs - this.suspendedAtMs))
    );
  }

  /** Whether the session may be read by this identity (GS-1, D-15). */
  isVisibleTo(identity: Identity): boolean {
    return (
      identity.isObserver ||
      identity.sender === this.view.initiator ||
      this.view.participants.includes(identity.sender)
    );
  }

  toMetadata(): SessionMetadata {
    const activity: ParticipantActivity[] = [];
    if (this.activity) {
      const senders = [...this.activity.keys()].sort(compareStrings);
      for (const sender of senders) {
        const entry = this.activity.get(sender) as Activity;
        activity.push({
          $typeName: "macp.v1.ParticipantActivity",
          participantId: sender,
          lastMessageAtUnixMs: BigInt(entry.lastMessageAtMs),
          messageCount: entry.count,
        });
      }
    }
    return {
      $typeName: "macp.v1.SessionMetadata",
      sessionId: this.view.sessionId,
      mode: this.view.mode,
      state: this.state,
      startedAtUnixMs: BigInt(this.startedAtMs),
      expiresAtUnixMs: BigInt(this.expiresAtMs),
      modeVersion: this.view.modeVersion,
      configurationVersion: this.view.configurationVersion,
      policyVersion: this.view.policyVersion,
      participants: [...this.view.participants],
      participantActivity: activity,
      initiator: this.view.initiator,
      contextId: this.contextId,
      extensionKeys: [...this.extensionKeys],
    };
  }
}

/** Byte-order comparison (not locale), so orderings are deterministic everywhere. */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

const noop = () => {};

/**
 * Runs `task` when every earlier task of the same holder has finished. A task
 * that completes synchronously on an idle holder runs inline with no promise,
 * which keeps the in-memory path cheap.
 */
export function withLock<T>(
  holder: { lockTail: Promise<void> | undefined },
  task: () => T | Promise<T>,
): T | Promise<T> {
  const previous = holder.lockTail;
  const result = previous === undefined ? task() : previous.then(task);
  return result instanceof Promise ? holdLockUntil(holder, result) : result;
}

/**
 * Keeps an idle holder locked until `pending` settles. With a check that the
 * holder is idle (`lockTail === undefined`) and a synchronous task run inline,
 * this is {@link withLock} without allocating a closure for the task.
 */
export function holdLockUntil<T>(
  holder: { lockTail: Promise<void> | undefined },
  pending: Promise<T>,
): Promise<T> {
  const tail: Promise<void> = pending.then(noop, noop).then(() => {
    if (holder.lockTail === tail) holder.lockTail = undefined;
  });
  holder.lockTail = tail;
  return pending;
}
