import type { Socket } from "node:net";
import {
  Metadata,
  ServerInterceptingCall,
  type ServerInterceptingCallInterface,
  type ServerInterceptor,
  status,
} from "@grpc/grpc-js";

type InterceptingServerListener = Parameters<ServerInterceptingCallInterface["start"]>[0];
type ConnectionInfo = ReturnType<ServerInterceptingCallInterface["getConnectionInfo"]>;
type CallStatus = Parameters<ServerInterceptingCallInterface["sendStatus"]>[0];

export interface CallGuardOptions {
  /** How long a call's phase (below) may last before the call ends with CANCELLED. */
  readonly requestTimeoutMs: number;
  /** Calls of one connection in their phase at a time; the rest wait their turn. */
  readonly concurrencyLimitPerConnection: number;
}

/**
 * The request timeout and the per-connection concurrency limit of the grpc-js
 * listener, with the semantics of @macp/connect's guarded handler (and of the
 * reference's tower layers). Both cover a call's phase: a unary call until
 * its status is sent, a server stream until its request is in (a watch then
 * runs as long as its client wants); bidi streams (StreamSession) are exempt.
 * A call beyond the limit waits, in arrival order, before its handler sees it.
 */
export interface CallGuard {
  /** The interceptor to give the grpc-js `Server`. */
  readonly interceptor: ServerInterceptor;
  /** Rations the calls of a connection from now until it closes. */
  track(socket: Socket): void;
  /**
   * From now on, a call that would wait for a slot ends with UNAVAILABLE
   * instead, and so does every call waiting now: its handler never ran, so a
   * client may retry it elsewhere.
   */
  shutDown(): void;
}

/** The admission slots of one connection. */
interface ConnectionSlots {
  admitted: number;
  /** Calls waiting for a slot, oldest first. */
  readonly waiting: GuardedCall[];
}

/**
 * Where a call is: started (no metadata yet), waiting for one of its
 * connection's slots, running (holding a slot, or its connection is not
 * rationed), or over (answered, streaming, cancelled or timed out).
 */
type Phase = "starting" | "waiting" | "running" | "over";

interface GuardContext {
  readonly options: CallGuardOptions;
  slotsOf(connection: ConnectionInfo): ConnectionSlots | undefined;
  readonly shuttingDown: boolean;
}

/**
 * One call between grpc-js and its handler: the call's interface towards the
 * handler and its listener towards grpc-js in one object, so that a call
 * under its connection's limit costs this object and the timer, and no
 * closure. (A ServerInterceptingCall because grpc-js's interceptor type asks
 * for one; its responder machinery is bypassed.)
 */
class GuardedCall extends ServerInterceptingCall implements InterceptingServerListener {
  private listener: InterceptingServerListener | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private phase: Phase = "starting";
  private slots: ConnectionSlots | undefined;
  /** The request metadata, held while the call waits for a slot. */
  private heldMetadata: Metadata | undefined;

  constructor(
    private readonly inner: ServerInterceptingCallInterface,
    private readonly context: GuardContext,
    private readonly serverStreaming: boolean,
  ) {
    super(inner);
  }

  override start(listener: InterceptingServerListener): void {
    this.listener = listener;
    this.timer = setTimeout(expire, this.context.options.requestTimeoutMs, this);
    this.inner.start(this);
  }

  onReceiveMetadata(metadata: Metadata): void {
    if (this.phase !== "starting") return;
    const slots = this.context.slotsOf(this.inner.getConnectionInfo());
    if (slots === undefined) {
      this.phase = "running";
    } else if (slots.admitted < this.context.options.concurrencyLimitPerConnection) {
      slots.admitted++;
      this.slots = slots;
      this.phase = "running";
    } else if (this.context.shuttingDown) {
      this.endWith(status.UNAVAILABLE, "the server is shutting down");
      return;
    } else {
      // The handler does not see the call, nor asks for its request, until admitted.
      this.heldMetadata = metadata;
      this.slots = slots;
      this.phase = "waiting";
      slots.waiting.push(this);
      return;
    }
    this.listener?.onReceiveMetadata(metadata);
  }

  /** Takes the slot its connection freed for it (already counted). */
  admit(): void {
    const metadata = this.heldMetadata ?? new Metadata();
    this.heldMetadata = undefined;
    this.phase = "running";
    this.listener?.onReceiveMetadata(metadata);
  }

  onReceiveMessage(message: unknown): void {
    this.listener?.onReceiveMessage(message);
  }

  onReceiveHalfClose(): void {
    // A server stream's request is in: from here on it may run as long as its client wants.
    if (this.serverStreaming) this.endPhase();
    this.listener?.onReceiveHalfClose();
  }

  onCancel(): void {
    this.endPhase();
    this.listener?.onCancel();
  }

  /** The request timeout fired. */
  expire(): void {
    const timeoutMs = this.context.options.requestTimeoutMs;
    this.endWith(status.CANCELLED, `request timeout expired (${timeoutMs} ms)`);
  }

  /** Ends the call with `code` (the handler, if it runs, is told the call is cancelled). */
  endWith(code: status, details: string): void {
    this.endPhase();
    this.inner.sendStatus({ code, details, metadata: new Metadata() });
  }

  /** Stops the timer and gives up the call's slot, or its place in the queue. */
  private endPhase(): void {
    if (this.phase === "over") return;
    clearTimeout(this.timer);
    const slots = this.slots;
    if (slots !== undefined) {
      if (this.phase === "waiting") {
        const index = slots.waiting.indexOf(this);
        if (index >= 0) slots.waiting.splice(index, 1);
        this.heldMetadata = undefined;
      } else {
        const next = slots.waiting.shift();
        if (next === undefined) slots.admitted--;
        else next.admit();
      }
      this.slots = undefined;
    }
    this.phase = "over";
  }

  override sendMetadata(metadata: Metadata): void {
    this.inner.sendMetadata(metadata);
  }

  override sendMessage(message: unknown, callback: () => void): void {
    this.inner.sendMessage(message, callback);
  }

  override sendStatus(callStatus: CallStatus): void {
    this.endPhase();
    this.inner.sendStatus(callStatus);
  }

  override startRead(): void {
    this.inner.startRead();
  }
}

// A module-level timer callback: arming the timeout allocates no closure per call.
function expire(call: GuardedCall): void {
  call.expire();
}

export function createCallGuard(options: CallGuardOptions): CallGuard {
  // Connections by remote address and port: what grpc-js tells a call about its connection.
  const connections = new Map<string, Map<number, ConnectionSlots>>();
  let shuttingDown = false;

  const context: GuardContext = {
    options,
    slotsOf(connection) {
      const { remoteAddress, remotePort } = connection;
      if (remoteAddress === undefined || remotePort === undefined) return undefined;
      return connections.get(remoteAddress)?.get(remotePort);
    },
    get shuttingDown() {
      return shuttingDown;
    },
  };

  return {
    interceptor: (method, call) =>
      method.requestStream
        ? new ServerInterceptingCall(call)
        : new GuardedCall(call, context, method.responseStream),
    track(socket) {
      const { remoteAddress, remotePort } = socket;
      if (remoteAddress === undefined || remotePort === undefined) return;
      let ports = connections.get(remoteAddress);
      if (ports === undefined) {
        ports = new Map();
        connections.set(remoteAddress, ports);
      }
      const slots: ConnectionSlots = { admitted: 0, waiting: [] };
      ports.set(remotePort, slots);
      socket.once("close", () => {
        const current = connections.get(remoteAddress);
        if (current?.get(remotePort) !== slots) return;
        current.delete(remotePort);
        if (current.size === 0) connections.delete(remoteAddress);
      });
    },
    shutDown() {
      shuttingDown = true;
      for (const ports of connections.values()) {
        for (const slots of ports.values()) {
          for (const call of [...slots.waiting]) {
            call.endWith(status.UNAVAILABLE, "the server is shutting down");
          }
        }
      }
    },
  };
}
