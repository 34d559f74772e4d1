import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInspectorPage, type PageResponse } from "@macp/inspector";
import { afterAll, describe, expect, it } from "vitest";

const bundle = mkdtempSync(join(tmpdir(), "macp-inspector-page-"));
mkdirSync(join(bundle, "assets"));
writeFileSync(join(bundle, "index.html"), "<!doctype html><title>page</title>");
writeFileSync(join(bundle, "assets", "index-abc.js"), "console.log(1)");
writeFileSync(join(tmpdir(), "macp-inspector-secret.txt"), "secret");
afterAll(() => rmSync(bundle, { recursive: true, force: true }));

interface Answer {
  handled: boolean;
  status?: number;
  headers?: Record<string, string>;
  body?: string;
}

function get(url: string, method = "GET"): Answer {
  const page = createInspectorPage({ directory: bundle });
  const answer: Answer = { handled: false };
  const response: PageResponse = {
    writeHead(status, headers) {
      answer.status = status;
      answer.headers = headers;
    },
    end(body) {
      answer.body = new TextDecoder().decode(body);
    },
  };
  answer.handled = page({ method, url }, response);
  return answer;
}

describe("the inspector page handler", () => {
  it("serves the page under /inspector/ and its hashed assets", () => {
    expect(get("/inspector")).toMatchObject({ status: 308, headers: { location: "/inspector/" } });
    const index = get("/inspector/?bearer=x");
    expect(index).toMatchObject({ status: 200, body: "<!doctype html><title>page</title>" });
    expect(index.headers?.["content-type"]).toBe("text/html; charset=utf-8");
    expect(index.headers?.["content-security-policy"]).toContain("default-src 'self'");
    const script = get("/inspector/assets/index-abc.js");
    expect(script).toMatchObject({ status: 200, body: "console.log(1)" });
    expect(script.headers?.["cache-control"]).toContain("immutable");
    expect(get("/inspector/assets/index-abc.js", "HEAD")).toMatchObject({ status: 200, body: "" });
  });

  it("leaves other paths alone and serves nothing outside the bundle", () => {
    expect(get("/macp.v1.MACPRuntimeService/Send").handled).toBe(false);
    expect(get("/inspectorx").handled).toBe(false);
    expect(get("/inspector/../macp-inspector-secret.txt")).toMatchObject({ status: 404 });
    expect(get("/inspector/%2e%2e/macp-inspector-secret.txt")).toMatchObject({ status: 404 });
    expect(get("/inspector/missing.js")).toMatchObject({ status: 404 });
    expect(get("/inspector/", "POST")).toMatchObject({ status: 405 });
  });

  it("refuses to start without a built bundle", () => {
    expect(() => createInspectorPage({ directory: join(bundle, "nothing") })).toThrow(
      /not built.*npm run build/,
    );
  });
});
