import { create } from "@bufbuild/protobuf";
import {
  type Envelope,
  type RegistryChanged,
  type RootsChanged,
  type SessionLifecycleEvent,
  SessionLifecycleEventSchema,
  type WatchPoliciesResponse,
} from "@macp/proto";
import type { RuntimeObserver, StreamRpc } from "../runtime-observer.js";
import type { RuntimeLimits } from "../runtime-options.js";
import { Hub, type Subscription } from "../streams/hub.js";
import type { Session } from "./session.js";
import type { SequencedEnvelope, SessionEvents } from "./session-machine.js";

/** Every broadcast channel of the runtime, and the open streams to end at shutdown. */
export class StreamHubs {
  private readonly sessionHubs = new Map<string, Hub<SequencedEnvelope>>();
  readonly lifecycle: Hub<SessionLifecycleEvent>;
  readonly signals: Hub<Envelope>;
  readonly modeRegistry: Hub<RegistryChanged>;
  readonly policies: Hub<WatchPoliciesResponse>;
  readonly roots: Hub<RootsChanged>;
  /** Open StreamSession calls. */
  readonly openStreams = new Set<{ end(): void }>();
  closed = false;

  constructor(
    private readonly limits: RuntimeLimits,
    private readonly observer: RuntimeObserver | undefined,
  ) {
    this.lifecycle = new Hub(limits.lifecycleStreamBuffer, "error");
    this.signals = new Hub(limits.signalStreamBuffer, "error");
    this.modeRegistry = new Hub(limits.registryStreamBuffer, "end");
    this.policies = new Hub(limits.registryStreamBuffer, "end");
    this.roots = new Hub(limits.registryStreamBuffer, "end");
  }

  sessionHub(sessionId: string): Hub<SequencedEnvelope> {
    let hub = this.sessionHubs.get(sessionId);
    if (hub === undefined) {
      hub = new Hub(this.limits.sessionStreamBuffer, "error");
      this.sessionHubs.set(sessionId, hub);
    }
    return hub;
  }

  releaseSessionHub(sessionId: string): void {
    const hub = this.sessionHubs.get(sessionId);
    if (hub !== undefined && hub.size === 0) this.sessionHubs.delete(sessionId);
  }

  /** Publishes what the session machine reported: the envelope to session streams, then the lifecycle event. */
  publish(session: Session, events: SessionEvents, observedAtMs: number): void {
    if (events.streamed !== undefined && this.sessionHubs.size > 0) {
      this.sessionHubs.get(session.view.sessionId)?.publish(events.streamed);
    }
    if (events.lifecycle !== undefined && this.lifecycle.size > 0) {
      this.lifecycle.publish(
        create(SessionLifecycleEventSchema, {
          eventType: events.lifecycle,
          session: session.toMetadata(),
          observedAtUnixMs: BigInt(observedAtMs),
        }),
      );
    }
  }

  /** A bounded subscription to `hub`, reported to the observer; ended at once after shutdown. */
  subscribe<T>(
    rpc: StreamRpc,
    hub: Hub<T>,
    signal: AbortSignal | undefined,
    initial: T[],
  ): Subscription<T> {
    const subscription = hub.subscribe(signal, initial, this.closeHook(rpc));
    if (this.closed) subscription.end();
    return subscription;
  }

  /** Reports a stream as opened and returns what reports it closed (once). */
  closeHook(rpc: StreamRpc): (() => void) | undefined {
    const observer = this.observer;
    if (observer === undefined) return undefined;
    observer.streamOpened?.(rpc);
    return () => observer.streamClosed?.(rpc);
  }

  endAll(): void {
    this.closed = true;
    for (const stream of [...this.openStreams]) stream.end();
    for (const hub of this.sessionHubs.values()) hub.endAll();
    this.lifecycle.endAll();
    this.signals.endAll();
    this.modeRegistry.endAll();
    this.policies.endAll();
    this.roots.endAll();
  }
}
