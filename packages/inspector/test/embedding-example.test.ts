import type { AddressInfo } from "node:net";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { inspector } from "@macp/proto";
import { expect, it } from "vitest";
import { startInspectedServer } from "./embedding-example.js";

it("runs the README's example: the page and the service on a host's HTTP/1.1 server", async () => {
  const server = await startInspectedServer(0);
  try {
    const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const page = await fetch(`${baseUrl}/inspector/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("<title>MACP inspector</title>");
    expect((await fetch(`${baseUrl}/elsewhere`)).status).toBe(404);
    const client = createClient(
      inspector.InspectorService,
      createConnectTransport({ baseUrl, httpVersion: "1.1" }),
    );
    const { nowUnixMs } = await client.getClock({});
    expect(Number(nowUnixMs)).toBeGreaterThan(0);
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});
