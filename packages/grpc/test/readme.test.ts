// The README's example is this directory's readme-example.ts, shown verbatim and run here.
import { readFileSync } from "node:fs";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { MACPRuntimeService } from "@macp/proto";
import { describe, expect, it } from "vitest";
import { serve } from "./readme-example.js";

const read = (path: string) => readFileSync(new URL(path, import.meta.url), "utf8");

describe("@macp/grpc README", () => {
  it("shows the example file verbatim", () => {
    const example = read("./readme-example.ts");
    expect(read("../README.md")).toContain(example.slice(example.indexOf("import")).trim());
  });

  it("serves Initialize on the port it bound", async () => {
    const server = await serve(0);
    try {
      const client = createClient(MACPRuntimeService, createGrpcTransport({ baseUrl: server.url }));
      const init = await client.initialize({ supportedProtocolVersions: ["1.0"] });
      expect(init.selectedProtocolVersion).toBe("1.0");
    } finally {
      await server.close();
    }
  });
});
