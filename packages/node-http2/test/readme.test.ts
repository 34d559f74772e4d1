// The README's example is this directory's readme-example.ts, shown verbatim and run here.
import { readFileSync } from "node:fs";
import { connect, type ServerHttp2Session } from "node:http2";
import type { AddressInfo } from "node:net";
import { usesStreamTable } from "@macp/node-http2";
import { describe, expect, it } from "vitest";
import { startHelloServer } from "./readme-example.js";

const read = (path: string) => readFileSync(new URL(path, import.meta.url), "utf8");

describe("@macp/node-http2 README", () => {
  it("shows the example file verbatim", () => {
    const example = read("./readme-example.ts");
    expect(read("../README.md")).toContain(example.slice(example.indexOf("import")).trim());
  });

  it("serves through sessions that use a StreamTable", async () => {
    const server = await startHelloServer(0);
    const sessions: ServerHttp2Session[] = [];
    server.on("session", (session) => sessions.push(session));
    const client = connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    try {
      const body = await new Promise<string>((resolve, reject) => {
        const request = client.request({ ":path": "/" });
        let text = "";
        request.setEncoding("utf8");
        request.on("data", (chunk: string) => {
          text += chunk;
        });
        request.on("end", () => resolve(text));
        request.on("error", reject);
      });
      expect(body).toBe("hello");
      expect(sessions.map(usesStreamTable)).toEqual([true]);
    } finally {
      client.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
