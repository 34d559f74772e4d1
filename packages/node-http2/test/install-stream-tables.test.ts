import { once } from "node:events";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { installStreamTable, installStreamTables, usesStreamTable } from "../src/index.js";
import { getText } from "./support.js";

const servers: http2.Http2Server[] = [];
const clients: http2.ClientHttp2Session[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.destroy();
  await Promise.all(
    servers
      .splice(0)
      .map((server) => new Promise<void>((resolve) => server.close(() => resolve()))),
  );
});

/** A plaintext HTTP/2 server on an ephemeral port whose sessions are collected. */
async function startServer(
  onStream: (stream: http2.ServerHttp2Stream) => void,
  { install = true } = {},
) {
  const server = http2.createServer();
  servers.push(server);
  const sessions: http2.ServerHttp2Session[] = [];
  if (install) installStreamTables(server);
  server.on("session", (session) => sessions.push(session));
  server.on("stream", onStream);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const client = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  clients.push(client);
  return { sessions, client };
}

function answer(stream: http2.ServerHttp2Stream): void {
  stream.respond({ ":status": 200 });
  stream.end(String(stream.id));
}

/** Closes the server side of the session; node:http2 finishes once its stream table is empty. */
const closeGracefully = (session: http2.ServerHttp2Session) =>
  new Promise<void>((resolve) => session.close(() => resolve()));

/** Holds three calls open, destroys the server's session, and reports what each side saw. */
async function destroyWithOpenStreams(install: boolean) {
  const held: http2.ServerHttp2Stream[] = [];
  const { sessions, client } = await startServer((stream) => held.push(stream), { install });
  const calls = Array.from({ length: 3 }, () =>
    getText(client).then(
      (body) => `answered ${JSON.stringify(body)}`,
      (error: Error) => `failed: ${error.message}`,
    ),
  );
  while (held.length < 3) await new Promise((resolve) => setTimeout(resolve, 5));
  const closed = held.map((stream) => once(stream, "close"));
  const session = sessions[0] as http2.ServerHttp2Session;
  expect(usesStreamTable(session)).toBe(install);
  session.destroy();
  await Promise.all(closed);
  return {
    serverStreamsDestroyed: held.map((stream) => stream.destroyed),
    clientOutcomes: await Promise.all(calls),
  };
}

describe("installStreamTables", () => {
  it("gives every session a StreamTable, which carries concurrent and sequential calls", async () => {
    const { sessions, client } = await startServer(answer);
    const bodies = await Promise.all(Array.from({ length: 50 }, () => getText(client)));
    expect(new Set(bodies).size).toBe(50);
    for (let call = 0; call < 200; call++) await getText(client);
    expect(sessions).toHaveLength(1);
    expect(sessions.every(usesStreamTable)).toBe(true);
    // Resolves only once every ended stream has left the table.
    await closeGracefully(sessions[0] as http2.ServerHttp2Session);
  });

  it("serves streams that end in any order, and empties the table", async () => {
    // Answered in an order unrelated to arrival: deletions from the middle of the table.
    const waiting: http2.ServerHttp2Stream[] = [];
    const { sessions, client } = await startServer((stream) => {
      waiting.push(stream);
      if (waiting.length < 100) return;
      for (let index = waiting.length - 1; index > 0; index--) {
        const other = (index * 7919) % (index + 1); // a fixed shuffle
        [waiting[index], waiting[other]] = [waiting[other] as never, waiting[index] as never];
      }
      for (const held of waiting.splice(0)) answer(held);
    });
    const bodies = await Promise.all(Array.from({ length: 100 }, () => getText(client)));
    expect(new Set(bodies).size).toBe(100);
    expect(sessions.every(usesStreamTable)).toBe(true);
    await closeGracefully(sessions[0] as http2.ServerHttp2Session);
  });

  it("keeps node:http2's session destroy: open streams are destroyed with it", async () => {
    const withTable = await destroyWithOpenStreams(true);
    expect(withTable.serverStreamsDestroyed).toEqual([true, true, true]);
    // The clients see what they see from a session with node:http2's own Map.
    expect(withTable).toEqual(await destroyWithOpenStreams(false));
  });

  it("carries over the streams a session already has, and is idempotent", async () => {
    const installed: boolean[] = [];
    const { sessions, client } = await startServer(
      (stream) => {
        // The stream is in node:http2's own Map when its handler runs.
        const session = stream.session as http2.ServerHttp2Session;
        installed.push(usesStreamTable(session), installStreamTable(session));
        installed.push(installStreamTable(session), usesStreamTable(session));
        answer(stream);
      },
      { install: false },
    );
    expect(await getText(client)).toBe("1");
    expect(installed).toEqual([false, true, true, true]);
    // The carried-over stream left the new table when it ended.
    await closeGracefully(sessions[0] as http2.ServerHttp2Session);
  });
});

describe("installStreamTable on a session it does not recognise", () => {
  it("changes nothing and says so", () => {
    const state = Symbol("state");
    const notAMap = { streams: { size: 0 } };
    const unknownLayouts = [
      {},
      { [Symbol("other")]: { streams: new Map() } },
      { [state]: notAMap },
      { [state]: { streams: new Map<unknown, unknown>([["not a stream id", {}]]) } },
    ];
    for (const session of unknownLayouts) {
      expect(installStreamTable(session as unknown as http2.Http2Session)).toBe(false);
      expect(usesStreamTable(session as unknown as http2.Http2Session)).toBe(false);
    }
    expect(notAMap.streams).toEqual({ size: 0 });
  });
});
