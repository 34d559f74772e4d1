import type * as http from "node:http";
import type { Http2ServerRequest, Http2Session } from "node:http2";
import type { Socket } from "node:net";

/** An HTTP/1.1 connection (its socket) or an HTTP/2 one (its session). */
export type Connection = Socket | Http2Session;

/** The connection a request came on. */
export function connectionOf(request: http.IncomingMessage | Http2ServerRequest): Connection {
  return "stream" in request ? (request.stream.session ?? request.socket) : request.socket;
}

export interface ConnectionTrackerOptions {
  /** How long a connection may carry no request before it is closed. */
  readonly idleTimeoutMs: number;
  /** Requests of one connection admitted at a time; the rest wait their turn. */
  readonly concurrencyLimit: number;
}

/** Per-connection bookkeeping: idle connections are closed, admissions are rationed. */
export interface ConnectionTracker {
  /** Starts watching a new connection: if no request arrives in time, it is closed. */
  track(connection: Connection): void;
  /** Stops watching one (a socket whose HTTP/2 session is watched from now on). */
  forget(connection: Connection): void;
  /** A request arrived; the connection is not idle until it is {@link ended}. */
  started(connection: Connection): void;
  ended(connection: Connection): void;
  /**
   * Waits for one of the connection's admission slots; call the returned
   * release once the request no longer needs it. Resolves to undefined, and
   * takes no slot, if `signal` aborts first.
   */
  admit(connection: Connection, signal: AbortSignal): Promise<(() => void) | undefined>;
}

interface ConnectionState {
  open: number;
  idleTimer: ReturnType<typeof setTimeout> | undefined;
  admitted: number;
  readonly waiting: (() => void)[];
}

// After GOAWAY a session waits for its peer; one that does not answer is cut.
const GOAWAY_GRACE_MS = 1000;

function closeIdle(connection: Connection): void {
  if ("destroyed" in connection && connection.destroyed) return;
  if ("goaway" in connection) {
    // GOAWAY first, so a gRPC client reconnects before its next call instead of failing it.
    connection.close();
    setTimeout(() => connection.destroy(), GOAWAY_GRACE_MS).unref();
  } else {
    connection.destroy();
  }
}

export function createConnectionTracker(options: ConnectionTrackerOptions): ConnectionTracker {
  const states = new WeakMap<Connection, ConnectionState>();

  const stateOf = (connection: Connection): ConnectionState => {
    let state = states.get(connection);
    if (state === undefined) {
      state = { open: 0, idleTimer: undefined, admitted: 0, waiting: [] };
      states.set(connection, state);
      connection.once("close", () => clearTimeout(states.get(connection)?.idleTimer));
    }
    return state;
  };

  const armIdleTimer = (connection: Connection, state: ConnectionState): void => {
    clearTimeout(state.idleTimer);
    state.idleTimer = setTimeout(() => closeIdle(connection), options.idleTimeoutMs);
    state.idleTimer.unref();
  };

  return {
    track(connection) {
      armIdleTimer(connection, stateOf(connection));
    },
    forget(connection) {
      clearTimeout(states.get(connection)?.idleTimer);
      states.delete(connection);
    },
    started(connection) {
      const state = stateOf(connection);
      state.open++;
      clearTimeout(state.idleTimer);
      state.idleTimer = undefined;
    },
    ended(connection) {
      const state = stateOf(connection);
      state.open--;
      if (state.open === 0) armIdleTimer(connection, state);
    },
    admit(connection, signal) {
      const state = stateOf(connection);
      const release = (): void => {
        state.admitted--;
        state.waiting.shift()?.();
      };
      const once = (): (() => void) => {
        let released = false;
        return () => {
          if (released) return;
          released = true;
          release();
        };
      };
      if (state.admitted < options.concurrencyLimit) {
        state.admitted++;
        return Promise.resolve(once());
      }
      if (signal.aborted) return Promise.resolve(undefined);
      return new Promise((resolve) => {
        const wake = (): void => {
          signal.removeEventListener("abort", giveUp);
          state.admitted++;
          resolve(once());
        };
        const giveUp = (): void => {
          const index = state.waiting.indexOf(wake);
          if (index >= 0) state.waiting.splice(index, 1);
          resolve(undefined);
        };
        state.waiting.push(wake);
        signal.addEventListener("abort", giveUp, { once: true });
      });
    },
  };
}
