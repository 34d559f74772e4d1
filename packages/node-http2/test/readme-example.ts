import { once } from "node:events";
import { createServer, type Http2Server } from "node:http2";
import { installStreamTables } from "@macp/node-http2";

export async function startHelloServer(port: number): Promise<Http2Server> {
  const server = createServer((_request, response) => response.end("hello"));
  // Every session this server creates keeps its open streams in a StreamTable.
  installStreamTables(server);
  server.listen(port, "127.0.0.1");
  await once(server, "listening");
  return server;
}
