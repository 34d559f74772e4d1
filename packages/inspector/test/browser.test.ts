// In a real browser (Debian's chromium driven by playwright-core, never a
// downloaded browser) against the built server that `npm start` runs:
// a page on another origin runs decision sessions over gRPC-Web and Connect,
// and the inspector shows a session appearing, its envelopes arriving live,
// and its resolution. MACP_SCREENSHOTS=1 rewrites the screenshots in docs/.

import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { create, toBinary } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { INSPECTOR_BUNDLE_DIR } from "@macp/inspector";
import { decision, EnvelopeSchema, MACPRuntimeService } from "@macp/proto";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { build } from "vite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const CHROMIUM = "/usr/bin/chromium";
const REPO = fileURLToPath(new URL("../../../", import.meta.url));
const SCREENSHOTS = process.env.MACP_SCREENSHOTS === "1";
const DOCS_IMAGES = join(REPO, "docs", "images");
// CI must run these; elsewhere a machine without chromium skips them with a notice.
const runnable = existsSync(CHROMIUM) || process.env.CI !== undefined;
if (!runnable) console.warn(`browser tests skipped: no ${CHROMIUM} (apt-get install chromium)`);

interface DecisionRun {
  sessionId: string;
  acks: string[];
  state: string;
  events: string[];
}

let scratch: string;
let pageServer: Server;
let strangerServer: Server;
let runtime: ChildProcess;
let runtimeUrl: string;
let browser: BrowserContext;

/** Serves the files of `directory` over HTTP/1.1 on a free loopback port. */
async function serveStatic(directory: string): Promise<Server> {
  const types: Record<string, string> = { ".html": "text/html", ".js": "text/javascript" };
  const server = createServer((request, response) => {
    const name = (request.url ?? "/").split("?")[0]?.replace(/^\/+/, "") || "index.html";
    const path = join(directory, name);
    if (!path.startsWith(directory) || !existsSync(path)) {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { "content-type": types[extname(path)] ?? "text/plain" });
    response.end(readFileSync(path));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return server;
}

const originOf = (server: Server): string =>
  `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

/** Starts the built runtime as `npm start` does after building, on a free port. */
async function startRuntime(
  env: Record<string, string>,
): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [join(REPO, "packages/runtime/dist/main.js")], {
    cwd: scratch,
    env: { PATH: process.env.PATH, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
      output += chunk;
      const found = /"httpUrl":"(http:\/\/[^"]+)"[^\n]*listening/.exec(output);
      if (found?.[1] !== undefined) resolve(found[1]);
    });
    child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
      output += chunk;
    });
    child.once("exit", (code) => reject(new Error(`the runtime exited (${code}): ${output}`)));
  });
  return { child, url };
}

async function screenshot(page: Page, name: string): Promise<void> {
  if (SCREENSHOTS) await page.screenshot({ path: join(DOCS_IMAGES, name), fullPage: true });
}

describe.runIf(runnable)("in a real browser", () => {
  beforeAll(async () => {
    // `npm test` has built everything; a direct vitest run may find dist stale.
    execFileSync(join(REPO, "node_modules/.bin/tsc"), ["-b", "packages/runtime"], { cwd: REPO });
    if (!existsSync(join(INSPECTOR_BUNDLE_DIR, "index.html"))) {
      execFileSync("npm", ["run", "build:inspector"], { cwd: REPO, stdio: "pipe" });
    }
    scratch = mkdtempSync(join(tmpdir(), "macp-browser-"));
    const pageDir = join(scratch, "page");
    await build({
      configFile: false,
      root: fileURLToPath(new URL("./cross-origin/", import.meta.url)),
      base: "./",
      logLevel: "silent",
      resolve: {
        alias: [{ find: /^@macp\/proto$/, replacement: join(REPO, "packages/proto/src/index.ts") }],
      },
      build: { outDir: pageDir, emptyOutDir: true, target: "es2022" },
    });
    pageServer = await serveStatic(pageDir);
    // Same page, but an origin the runtime does not allow.
    strangerServer = await serveStatic(pageDir);

    const started = await startRuntime({
      MACP_ALLOW_INSECURE: "1",
      MACP_MEMORY_ONLY: "1",
      MACP_BIND_ADDR: "127.0.0.1:0",
      MACP_INSPECTOR: "1",
      MACP_CORS_ORIGINS: originOf(pageServer),
    });
    runtime = started.child;
    runtimeUrl = started.url;

    browser = await chromium.launchPersistentContext(join(scratch, "chromium-profile"), {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1440, height: 900 },
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    runtime?.kill("SIGTERM");
    pageServer?.close();
    strangerServer?.close();
    if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
  });

  const runOnPage = async (origin: string, protocol: string): Promise<DecisionRun> => {
    const page = await browser.newPage();
    try {
      await page.goto(`${origin}/index.html`);
      await page.waitForFunction(() => "runDecision" in globalThis);
      const run = (await page.evaluate(
        ([url, over]) =>
          (
            globalThis as unknown as {
              runDecision(url: string, over: string): Promise<unknown>;
            }
          ).runDecision(url, over),
        [runtimeUrl, protocol] as const,
      )) as DecisionRun;
      await page.locator("#log").evaluate(
        (element, text) => {
          element.textContent = text;
        },
        `${protocol}, from ${origin} to ${runtimeUrl}:\n${JSON.stringify(run, null, 2)}`,
      );
      await screenshot(page, `cross-origin-${protocol}.png`);
      return run;
    } finally {
      await page.close();
    }
  };

  for (const protocol of ["grpc-web", "connect"]) {
    it(`runs a decision session from another origin over ${protocol}`, async () => {
      const run = await runOnPage(originOf(pageServer), protocol);
      expect(run.acks).toEqual([
        "SessionStart ok",
        "Proposal ok",
        "Vote ok",
        "Vote ok",
        "Commitment ok",
      ]);
      expect(run.state).toBe("RESOLVED");
      expect(run.events).toEqual(["CREATED", "RESOLVED"]);
    });
  }

  it("is refused by the browser from an origin the runtime does not allow", async () => {
    await expect(runOnPage(originOf(strangerServer), "connect")).rejects.toThrow(
      /Failed to fetch|unavailable/i,
    );
  });

  it("shows a session appearing, its envelopes arriving live, and its resolution", async () => {
    const page = await browser.newPage();
    const sessionManager = new Http2SessionManager(runtimeUrl);
    const macp = createClient(
      MACPRuntimeService,
      createGrpcTransport({ baseUrl: runtimeUrl, sessionManager }),
    );
    // Script errors and content-security-policy violations show up as console errors.
    const problems: string[] = [];
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(message.text());
    });
    page.on("pageerror", (error) => problems.push(error.message));
    try {
      await page.goto(`${runtimeUrl}/inspector`);
      await page.fill("input[name=bearer]", "lead");
      await page.click("header button[type=submit]");

      // Start a session from the page, as "lead".
      await page.fill("input[name=participants]", "alice, bob");
      await page.fill("input[name=intent]", "pick a region");
      await page.click("[data-testid=start-form] button[type=submit]");
      await expect
        .poll(() => page.textContent("[data-testid=outcome]"))
        .toBe("SessionStart: accepted");
      const sessionId = await page.getAttribute(".session", "data-session-id");
      if (sessionId === null) throw new Error("no session selected");
      const row = page.locator(`tr[data-session-id="${sessionId}"]`);
      await expect.poll(() => row.locator(".state").textContent()).toBe("OPEN");
      await expect.poll(() => row.locator("td").nth(3).textContent()).toBe("alice, bob");

      // Agents send from elsewhere; the timeline follows live, payloads decoded.
      const send = async (sender: string, messageType: string, payload: Uint8Array) => {
        const envelope = create(EnvelopeSchema, {
          macpVersion: "1.0",
          mode: "macp.mode.decision.v1",
          messageType,
          messageId: `${sender}-${messageType}`,
          sessionId,
          sender,
          timestampUnixMs: BigInt(Date.now()),
          payload,
        });
        return (await macp.send({ envelope }, { headers: { authorization: `Bearer ${sender}` } }))
          .ack;
      };
      const proposal = toBinary(
        decision.ProposalPayloadSchema,
        create(decision.ProposalPayloadSchema, {
          proposalId: "p1",
          option: "eu-west",
          rationale: "latency",
        }),
      );
      expect((await send("alice", "Proposal", proposal))?.ok).toBe(true);
      const proposed = page.locator("[data-testid=timeline] li[data-message-type=Proposal]");
      await expect.poll(() => proposed.textContent()).toContain('"option": "eu-west"');
      const vote = toBinary(
        decision.VotePayloadSchema,
        create(decision.VotePayloadSchema, { proposalId: "p1", vote: "APPROVE" }),
      );
      expect((await send("bob", "Vote", vote))?.ok).toBe(true);
      await expect
        .poll(() => page.locator("[data-testid=timeline] li[data-message-type=Vote]").count())
        .toBe(1);
      // A refusal, with its code.
      expect((await send("mallory", "Vote", vote))?.error?.code).toBe("FORBIDDEN");
      await expect
        .poll(() => page.locator(".session .refusals li[data-code=FORBIDDEN]").count())
        .toBe(1);
      await expect.poll(() => page.textContent("[data-testid=mode-state]")).toContain("eu-west");
      await screenshot(page, "inspector-live.png");

      // Commit from the page: the template echoes the bound versions.
      await page.selectOption("select[name=message-type]", "Commitment");
      const template = JSON.parse(await page.inputValue("textarea[name=payload]"));
      expect(template).toMatchObject({
        modeVersion: "1.0.0",
        configurationVersion: "config.default",
        policyVersion: "policy.default",
      });
      await page.fill(
        "textarea[name=payload]",
        JSON.stringify({
          ...template,
          action: "decision.selected",
          authorityScope: "team",
          reason: "p1 approved",
        }),
      );
      await page.click("[data-testid=send-form] button[type=submit]");
      await expect
        .poll(() => page.textContent("[data-testid=outcome]"))
        .toBe("Commitment: accepted");
      await expect.poll(() => page.textContent("[data-testid=session-state]")).toBe("RESOLVED");
      await expect.poll(() => row.locator(".state").textContent()).toBe("RESOLVED");
      await expect
        .poll(() => page.textContent("[data-testid=resolution]"))
        .toContain('"action": "decision.selected"');
      await expect.poll(() => page.textContent("[data-testid=verdict]")).toContain("allowed");
      await screenshot(page, "inspector-resolved.png");
      expect(problems).toEqual([]);
    } finally {
      sessionManager.abort();
      await page.close();
    }
  });
});
