// The docs send browsers and curl to the runtime's HTTP listener: no
// inspector link or curl call to a MACP service may name the default gRPC
// address (MACP_BIND_ADDR), which speaks HTTP/2 gRPC only. Examples on other
// ports are servers of their own (an embedding host on 8080).

import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { formatAddress, loadConfig } from "../src/config.js";
import { REPO_DIR } from "./helpers.js";

function markdownFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory()
      ? markdownFiles(join(dir, entry.name))
      : entry.name.endsWith(".md")
        ? [join(dir, entry.name)]
        : [],
  );
}

const docs = [
  join(REPO_DIR, "README.md"),
  ...markdownFiles(join(REPO_DIR, "docs")),
  ...readdirSync(join(REPO_DIR, "packages")).map((name) =>
    join(REPO_DIR, "packages", name, "README.md"),
  ),
].filter((path) => existsSync(path));

const loaded = loadConfig({ MACP_ALLOW_INSECURE: "1", MACP_MEMORY_ONLY: "1" });
if (!loaded.ok) throw new Error("the default configuration does not load");
const { bind, httpBind } = loaded.config;

/** The `127.0.0.1:<port>` addresses a doc gives for browser pages and curl calls to the runtime's services. */
function browserAddresses(text: string): string[] {
  const inspectorLinks = [...text.matchAll(/http:\/\/(127\.0\.0\.1:\d+)\/inspector\//g)];
  const serviceCalls = [...text.matchAll(/http:\/\/(127\.0\.0\.1:\d+)\/macp\.[\w.]+\/\w+/g)];
  return [...inspectorLinks, ...serviceCalls].map((match) => match[1] ?? "");
}

describe("browser and curl addresses in the docs", () => {
  it("the defaults put the HTTP listener beside the gRPC one", () => {
    expect(formatAddress(bind)).toBe("127.0.0.1:50051");
    expect(httpBind === undefined ? undefined : formatAddress(httpBind)).toBe("127.0.0.1:50052");
  });

  it.each(docs.map((path) => [relative(REPO_DIR, path), path]))(
    "%s sends no browser or curl call to the gRPC port",
    (_name, path) => {
      expect(browserAddresses(readFileSync(path, "utf8"))).not.toContain(formatAddress(bind));
    },
  );

  it("finds the README's inspector link and curl call", () => {
    expect(browserAddresses(readFileSync(join(REPO_DIR, "README.md"), "utf8"))).toEqual([
      "127.0.0.1:50052",
      "127.0.0.1:50052",
    ]);
  });
});
