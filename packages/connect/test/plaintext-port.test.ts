// The plaintext port speaks HTTP/1.1 beside h2c: what `curl --http1.1` and a
// browser send (raw requests through node:http, no Connect client), split
// across packets too, while HTTP/2 clients keep working on the same port.

import * as http2 from "node:http2";
import * as net from "node:net";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { type MacpServer, startMacpServer } from "@macp/connect/node";
import { InitializeRequestSchema, InitializeResponseSchema } from "@macp/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { devAuthenticate, http1Request, newRuntime } from "./support.js";

const INITIALIZE = "/macp.v1.MACPRuntimeService/Initialize";

function post(
  url: string,
  path: string,
  headers: Record<string, string>,
  body: Uint8Array | string,
) {
  return http1Request(`${url}${path}`, { headers, body });
}

/** A gRPC-Web frame: flags byte, 32-bit big-endian length, payload. */
function frame(flags: number, payload: Uint8Array): Buffer {
  const out = Buffer.alloc(5 + payload.length);
  out.writeUInt8(flags, 0);
  out.writeUInt32BE(payload.length, 1);
  out.set(payload, 5);
  return out;
}

function frames(body: Buffer): { flags: number; payload: Buffer }[] {
  const out: { flags: number; payload: Buffer }[] = [];
  let offset = 0;
  while (offset + 5 <= body.length) {
    const length = body.readUInt32BE(offset + 1);
    out.push({
      flags: body.readUInt8(offset),
      payload: body.subarray(offset + 5, offset + 5 + length),
    });
    offset += 5 + length;
  }
  return out;
}

describe("the plaintext port", () => {
  let server: MacpServer;

  beforeAll(async () => {
    server = await startMacpServer({
      runtime: newRuntime(),
      authenticate: devAuthenticate,
      port: 0,
    });
  });

  afterAll(async () => {
    await server.close({ drainMs: 1000 });
  });

  it("answers a Connect JSON call over HTTP/1.1 (curl --http1.1)", async () => {
    const response = await post(
      server.url,
      INITIALIZE,
      { "content-type": "application/json" },
      JSON.stringify({ supportedProtocolVersions: ["1.0"] }),
    );
    expect(response.httpVersion).toBe("1.1");
    expect(response.status).toBe(200);
    expect(response.headers["content-type"]).toBe("application/json");
    expect(JSON.parse(response.body.toString("utf8"))).toMatchObject({
      selectedProtocolVersion: "1.0",
    });
  });

  it("answers a Connect binary call over HTTP/1.1", async () => {
    const response = await post(
      server.url,
      INITIALIZE,
      { "content-type": "application/proto" },
      toBinary(
        InitializeRequestSchema,
        create(InitializeRequestSchema, { supportedProtocolVersions: ["1.0"] }),
      ),
    );
    expect(response.status).toBe(200);
    expect(fromBinary(InitializeResponseSchema, response.body).selectedProtocolVersion).toBe("1.0");
  });

  it("answers a gRPC-Web call over HTTP/1.1", async () => {
    const message = toBinary(
      InitializeRequestSchema,
      create(InitializeRequestSchema, { supportedProtocolVersions: ["1.0"] }),
    );
    const response = await post(
      server.url,
      INITIALIZE,
      { "content-type": "application/grpc-web+proto", "x-grpc-web": "1" },
      frame(0, message),
    );
    expect(response.httpVersion).toBe("1.1");
    expect(response.status).toBe(200);
    const [data, trailer] = frames(response.body);
    expect(data?.flags).toBe(0);
    expect(fromBinary(InitializeResponseSchema, data?.payload ?? Buffer.alloc(0))).toMatchObject({
      selectedProtocolVersion: "1.0",
    });
    expect(trailer?.flags).toBe(0x80);
    expect(trailer?.payload.toString("latin1")).toMatch(/grpc-status: ?0/);
  });

  it("tells the protocols apart when the first bytes arrive one at a time", async () => {
    const body = JSON.stringify({ supportedProtocolVersions: ["1.0"] });
    const request = Buffer.from(
      `POST ${INITIALIZE} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
    );
    // "P" is the first byte of both "POST" and the HTTP/2 preface ("PRI * …").
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(server.address.port, server.address.host);
      const received: Buffer[] = [];
      socket.on("data", (chunk: Buffer) => received.push(chunk));
      socket.on("end", () => resolve(Buffer.concat(received).toString("utf8")));
      socket.on("error", reject);
      socket.once("connect", async () => {
        for (const byte of request.subarray(0, 3)) {
          socket.write(Buffer.from([byte]));
          await new Promise((wait) => setTimeout(wait, 20));
        }
        socket.end(request.subarray(3));
      });
    });
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(answer).toContain('"selectedProtocolVersion":"1.0"');
  });

  it("still serves HTTP/2 with prior knowledge (h2c) on the same port", async () => {
    const session = http2.connect(server.url);
    try {
      const stream = session.request({
        ":method": "POST",
        ":path": INITIALIZE,
        "content-type": "application/json",
      });
      stream.end(JSON.stringify({ supportedProtocolVersions: ["1.0"] }));
      const chunks: Buffer[] = [];
      const status = await new Promise<number>((resolve, reject) => {
        let code = 0;
        stream.on("response", (headers) => {
          code = Number(headers[":status"]);
        });
        stream.on("data", (chunk: Buffer) => chunks.push(chunk));
        stream.on("end", () => resolve(code));
        stream.on("error", reject);
      });
      expect(status).toBe(200);
      expect(JSON.parse(Buffer.concat(chunks).toString("utf8"))).toMatchObject({
        selectedProtocolVersion: "1.0",
      });
    } finally {
      session.close();
    }
  });
});
