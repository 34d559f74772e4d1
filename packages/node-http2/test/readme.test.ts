// The README's example is this directory's readme-example.ts, shown verbatim and run here.
import { readFileSync } from "node:fs";
import { connect, type ServerHttp2Session } from "node:http2";
import type { AddressInfo } from "node:net";
import { usesStreamTable } from "@macp/node-http2";
import { describe, expect, it } from "vitest";
import { startHelloServer } from "./readme-example.js";
import { getText } from "./support.js";

describe("@macp/node-http2 README", () => {
  it("shows the example file verbatim", () => {
    const [readme = "", example = ""] = ["../README.md", "./readme-example.ts"].map((path) =>
      readFileSync(new URL(path, import.meta.url), "utf8"),
    );
    // From its first import on, so a header comment may stay out of the README.
    expect(readme).toContain(example.slice(example.indexOf("import")).trim());
  });

  it("serves through sessions that use a StreamTable", async () => {
    const server = await startHelloServer(0);
    const sessions: ServerHttp2Session[] = [];
    server.on("session", (session) => sessions.push(session));
    const client = connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    try {
      const body = await getText(client);
      expect(body).toBe("hello");
      expect(sessions.map(usesStreamTable)).toEqual([true]);
    } finally {
      client.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
