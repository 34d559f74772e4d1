import type { Http2Session, ServerHttp2Session } from "node:http2";
import { types } from "node:util";
import { StreamTable } from "./stream-table.js";

/** What `installStreamTables` needs of a node:http2 server: its "session" event. */
export interface Http2SessionSource {
  on(event: "session", listener: (session: ServerHttp2Session) => void): unknown;
}

/** The description of node:http2's private symbol for a session's bookkeeping. */
const STATE_SYMBOL_DESCRIPTION = "state";

/**
 * The session's bookkeeping object, where node:http2 keeps `streams`, its
 * Map from stream id to open stream (Node 20 and later). Undefined when the
 * session does not look like that.
 */
function stateOf(session: Http2Session): object | undefined {
  const key = Object.getOwnPropertySymbols(session).find(
    (symbol) => symbol.description === STATE_SYMBOL_DESCRIPTION,
  );
  if (key === undefined) return undefined;
  const state: unknown = Reflect.get(session, key);
  return typeof state === "object" && state !== null ? state : undefined;
}

/**
 * Gives `session` a {@link StreamTable} in place of node:http2's Map of open
 * streams (see StreamTable for why), with the streams it holds now. Returns
 * whether the session has one afterwards: false, and nothing changed, when
 * node:http2's private layout is not the one this was written for (the
 * session then works exactly as before). Call it when the session is created
 * (the server's "session" event), before it carries many calls.
 */
export function installStreamTable(session: Http2Session): boolean {
  const state = stateOf(session);
  if (state === undefined) return false;
  const streams: unknown = Reflect.get(state, "streams");
  if (streams instanceof StreamTable) return true;
  if (!types.isMap(streams)) return false;
  const table = new StreamTable<unknown>();
  for (const [id, stream] of streams) {
    if (typeof id !== "number") return false;
    table.set(id, stream);
  }
  return Reflect.set(state, "streams", table);
}

/** Whether `session` keeps its open streams in a {@link StreamTable}. */
export function usesStreamTable(session: Http2Session): boolean {
  const state = stateOf(session);
  return state !== undefined && Reflect.get(state, "streams") instanceof StreamTable;
}

/** Installs a {@link StreamTable} in every session `server` creates from now on. */
export function installStreamTables(server: Http2SessionSource): void {
  server.on("session", (session) => {
    installStreamTable(session);
  });
}
