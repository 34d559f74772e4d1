import { create, type MessageInitShape, toJsonString } from "@bufbuild/protobuf";
import type { ConnectRouter, HandlerContext } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { toStatusError, toWireError } from "@macp/connect";
import {
  type Caller,
  type Clock,
  ErrorCode,
  type Identity,
  isAuthenticated,
  type MacpRuntime,
  MacpStreamError,
  macpError,
} from "@macp/core";
import { linkSignals } from "@macp/core/wire";
import { type Envelope, inspector, StreamSessionRequestSchema } from "@macp/proto";
import { type BoundedFeed, createBoundedFeed } from "./bounded-feed.js";
import { decodePayload } from "./payload-schemas.js";
import type { RefusalLog, RefusalRecord } from "./refusal-log.js";

type WatchSessionItem = MessageInitShape<typeof inspector.WatchSessionResponseSchema>;
type RefusalInit = MessageInitShape<typeof inspector.RefusalSchema>;

export interface InspectorRoutesOptions {
  /** Resolves the caller from the request headers, exactly as for MACPRuntimeService. */
  authenticate(headers: Headers): Caller | Promise<Caller>;
  /** Where refusals are recorded: its `observer` must observe the runtime (`createRuntime({ observer })`). */
  readonly refusals: RefusalLog;
  /** The runtime's clock, for snapshot times and GetClock. Default: the wall clock. */
  readonly clock?: Clock;
  /** Ends every open inspector stream with UNAVAILABLE when aborted. Default: none. */
  readonly shutdownSignal?: AbortSignal;
  /**
   * Unread messages a stream may hold before it is ended with
   * RESOURCE_EXHAUSTED (a page that stopped reading). Default 1024.
   */
  readonly streamBuffer?: number;
}

const wallClock: Clock = { now: () => Date.now() };

/**
 * The `macp.inspector.v1.InspectorService` as a Connect route function, for
 * the same adapters as the MACP routes. Read-only: it follows sessions and
 * refusals with the caller's own visibility (GetSession's rules).
 */
export function createInspectorRoutes(
  runtime: MacpRuntime,
  options: InspectorRoutesOptions,
): (router: ConnectRouter) => void {
  const clock = options.clock ?? wallClock;
  const buffer = options.streamBuffer ?? 1024;
  const { refusals, shutdownSignal } = options;

  const identify = async (context: HandlerContext): Promise<Identity> => {
    const caller = await options.authenticate(context.requestHeader);
    if (!isAuthenticated(caller)) {
      throw toStatusError(macpError(ErrorCode.UNAUTHENTICATED, caller.unauthenticated));
    }
    return caller;
  };

  /** Runs `fill` against a bounded feed tied to the call and yields what it receives. */
  async function* serve<T>(
    context: HandlerContext,
    fill: (feed: BoundedFeed<T>, signal: AbortSignal) => () => void,
  ): AsyncGenerator<T, void, undefined> {
    const stop = new AbortController();
    const linked = linkSignals(context.signal, shutdownSignal, stop.signal);
    const feed = createBoundedFeed<T>(
      buffer,
      () => new ConnectError("the inspector stream fell behind", Code.ResourceExhausted),
      linked.signal,
    );
    let release: (() => void) | undefined;
    try {
      release = fill(feed, linked.signal);
      yield* feed;
      if (shutdownSignal?.aborted === true) {
        throw new ConnectError("the server is shutting down", Code.Unavailable);
      }
    } finally {
      stop.abort();
      release?.();
      linked.dispose();
    }
  }

  return (router) => {
    router.service(inspector.InspectorService, {
      getClock() {
        return { nowUnixMs: BigInt(clock.now()) };
      },

      async *watchSession(request, context) {
        const caller = await identify(context);
        const sessionId = request.sessionId;
        const visible = await runtime.getSession(sessionId, caller);
        if (visible.isErr()) throw toStatusError(visible.error);

        yield* serve<WatchSessionItem>(context, (feed, signal) => {
          const opened = runtime.openSessionStream(caller, signal);
          if (opened.isErr()) throw toStatusError(opened.error);
          const stream = opened.value;
          const verdict = createVerdictTracker();
          // A snapshot is sent only when it differs from the last one sent
          // (lifecycle watches also report sessions as they already are).
          let lastSnapshot = "";
          const pushSnapshot = (): void => {
            const value = snapshotOf(runtime, sessionId, verdict, clock);
            const key = toJsonString(inspector.SessionSnapshotSchema, {
              ...value,
              observedAtUnixMs: 0n,
            });
            if (key === lastSnapshot) return;
            lastSnapshot = key;
            feed.push({ item: { case: "snapshot", value } });
          };
          const pushRefusal = (refusal: RefusalRecord): void => {
            if (refusal.envelope?.sessionId !== sessionId) return;
            verdict.refused(refusal);
            feed.push({ item: { case: "refusal", value: refusalMessage(refusal) } });
          };

          pushSnapshot();
          // The session's recent refusals, at most a quarter of the buffer, so they never overflow it.
          const earlier = refusals
            .recent()
            .filter((refusal) => refusal.envelope?.sessionId === sessionId);
          for (const refusal of earlier.slice(-Math.floor(buffer / 4))) pushRefusal(refusal);
          const unfollow = refusals.follow((refusal) => {
            if (refusal.envelope?.sessionId !== sessionId) return;
            pushRefusal(refusal);
            pushSnapshot();
          });

          // Passive subscribe (core.md SUB-*): history after `after_sequence`, then live.
          let sequence = Number(request.afterSequence);
          const follow = async (): Promise<void> => {
            await stream.push(
              create(StreamSessionRequestSchema, {
                subscribeSessionId: sessionId,
                afterSequence: request.afterSequence,
              }),
            );
            for await (const output of stream.outputs) {
              if (output.kind === "error") throw new MacpStreamError(output.error);
              sequence++;
              // The history replay is paced on the page: it waits for room, it does not overflow.
              await feed.waitForRoom();
              // Only now, so a snapshot pushed meanwhile (a lifecycle event) never
              // shows a verdict before the entry it comes from.
              verdict.accepted(output.envelope);
              feed.push({
                item: { case: "entry", value: timelineEntry(sequence, output.envelope) },
              });
              // Snapshots once the history is replayed; during replay the state is ahead of the entries.
              if (sequence >= (runtime.inspectSession(sessionId)?.acceptedCount ?? 0)) {
                await feed.waitForRoom();
                pushSnapshot();
              }
            }
          };
          // Lifecycle changes that carry no envelope (expiry, cancel, suspend, resume).
          const lifecycle = async (): Promise<void> => {
            const events = runtime.watchSessions(caller, signal);
            if (events.isErr()) throw new MacpStreamError(events.error);
            for await (const event of events.value) {
              if (event.session?.sessionId === sessionId) pushSnapshot();
            }
          };
          const failFeed = (error: unknown): void => {
            feed.fail(error instanceof MacpStreamError ? toStatusError(error.error) : error);
          };
          follow().then(() => feed.end(), failFeed);
          lifecycle().catch(failFeed);
          return () => {
            unfollow();
            stream.end();
          };
        });
      },

      async *watchRefusals(_request, context) {
        const caller = await identify(context);
        // Visibility of a session never changes (participants are fixed at start), so it is cached per call.
        const visibility = new Map<string, Promise<boolean>>();
        const mayRead = (refusal: RefusalRecord): Promise<boolean> => {
          if (caller.isObserver || refusal.caller === caller.sender) return Promise.resolve(true);
          const sessionId = refusal.envelope?.sessionId ?? "";
          if (sessionId === "") return Promise.resolve(false);
          let known = visibility.get(sessionId);
          if (known === undefined) {
            known = runtime.getSession(sessionId, caller).then((result) => result.isOk());
            visibility.set(sessionId, known);
          }
          return known;
        };
        yield* serve<inspector.WatchRefusalsResponse>(context, (feed) => {
          // Refusals are delivered in the order they were recorded, whatever the visibility checks cost.
          let order = Promise.resolve();
          const offer = (refusal: RefusalRecord): void => {
            const allowed = mayRead(refusal);
            order = order.then(async () => {
              if (await allowed) {
                feed.push(
                  create(inspector.WatchRefusalsResponseSchema, {
                    refusal: refusalMessage(refusal),
                  }),
                );
              }
            });
          };
          for (const refusal of refusals.recent()) offer(refusal);
          return refusals.follow(offer);
        });
      },
    });
  };
}

/** The verdict at commitment: the latest accepted Commitment or policy denial of the session. */
interface VerdictTracker {
  accepted(envelope: Envelope): void;
  refused(refusal: RefusalRecord): void;
  readonly current: { allowed: boolean; reasons: readonly string[]; messageId: string } | undefined;
}

function createVerdictTracker(): VerdictTracker {
  let current: VerdictTracker["current"];
  return {
    accepted(envelope) {
      if (envelope.messageType === "Commitment") {
        current = { allowed: true, reasons: [], messageId: envelope.messageId };
      }
    },
    refused(refusal) {
      if (refusal.error.code !== ErrorCode.POLICY_DENIED) return;
      current = {
        allowed: false,
        reasons: refusal.error.reasons ?? [],
        messageId: refusal.envelope?.messageId ?? "",
      };
    },
    get current() {
      return current;
    },
  };
}

function snapshotOf(
  runtime: MacpRuntime,
  sessionId: string,
  verdict: VerdictTracker,
  clock: Clock,
): inspector.SessionSnapshot {
  const session = runtime.inspectSession(sessionId);
  const observedAtUnixMs = BigInt(clock.now());
  if (session === undefined) return create(inspector.SessionSnapshotSchema, { observedAtUnixMs });
  const { metadata, modeState, resolution } = session;
  const given = verdict.current;
  return create(inspector.SessionSnapshotSchema, {
    metadata,
    modeStateJson: modeState instanceof Uint8Array ? "" : JSON.stringify(modeState),
    resolutionJson:
      resolution === undefined ? "" : decodePayload(metadata.mode, "Commitment", resolution).json,
    acceptedCount: BigInt(session.acceptedCount),
    ...(given === undefined
      ? {}
      : {
          verdict: {
            policyVersion: metadata.policyVersion,
            allowed: given.allowed,
            reasons: [...given.reasons],
            commitmentMessageId: given.messageId,
          },
        }),
    observedAtUnixMs,
  });
}

function timelineEntry(
  sequence: number,
  envelope: Envelope,
): MessageInitShape<typeof inspector.TimelineEntrySchema> {
  const payload = decodePayload(envelope.mode, envelope.messageType, envelope.payload);
  return {
    sequence: BigInt(sequence),
    envelope,
    payloadJson: payload.json,
    payloadType: payload.typeName,
  };
}

function refusalMessage(refusal: RefusalRecord): RefusalInit {
  const envelope = refusal.envelope;
  const payload =
    envelope === undefined
      ? { json: "", typeName: "" }
      : decodePayload(envelope.mode, envelope.messageType, envelope.payload);
  return {
    ...(envelope === undefined ? {} : { envelope }),
    payloadJson: payload.json,
    payloadType: payload.typeName,
    caller: refusal.caller,
    error: toWireError(refusal.error, envelope?.sessionId ?? "", envelope?.messageId ?? ""),
    refusedAtUnixMs: BigInt(refusal.refusedAtMs),
    rpc: refusal.rpc,
  };
}
