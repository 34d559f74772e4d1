// The public packages as a user gets them: packed with `npm pack` (which
// builds them in prepack), linted with publint and @arethetypeswrong/cli,
// then installed from the tarballs into an app outside the workspace, where
// the embedding guide's code compiles against the shipped types and runs, and
// `npx macp-runtime` answers. Every non-private workspace is covered.

import { execFile } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { npmEnv, REPO_DIR, tempDir } from "./helpers.js";

const run = promisify(execFile);
const npm = process.platform === "win32" ? "npm.cmd" : "npm";
const npx = process.platform === "win32" ? "npx.cmd" : "npx";
const bin = (name: string) => join(REPO_DIR, "node_modules", ".bin", name);

interface Manifest {
  readonly name: string;
  readonly version: string;
  readonly private?: boolean;
  readonly workspaces?: readonly string[];
  readonly exports?: Readonly<Record<string, unknown>>;
}

const readManifest = async (dir: string): Promise<Manifest> =>
  JSON.parse(await readFile(join(dir, "package.json"), "utf8")) as Manifest;

const rootManifest = await readManifest(REPO_DIR);
const publicPackages = (
  await Promise.all((rootManifest.workspaces ?? []).map((dir) => readManifest(join(REPO_DIR, dir))))
).filter((manifest) => manifest.private !== true);

/** The version of `name` the workspace installed, so the app asks the cache for nothing new. */
async function workspaceVersion(name: string): Promise<string> {
  return (await readManifest(join(REPO_DIR, "node_modules", name))).version;
}

interface Packed {
  readonly name: string;
  readonly filename: string;
  readonly files: readonly { readonly path: string }[];
}

const work = await tempDir("packed");
const packDir = join(work.path, "tarballs");
const appDir = join(work.path, "app");
let packed: readonly Packed[] = [];

beforeAll(async () => {
  await mkdir(packDir);
  const { stdout } = await run(
    npm,
    [
      "pack",
      ...publicPackages.flatMap(({ name }) => ["--workspace", name]),
      "--pack-destination",
      packDir,
      "--json",
    ],
    { cwd: REPO_DIR, env: npmEnv(), maxBuffer: 64 * 1024 * 1024 },
  );
  packed = JSON.parse(stdout) as Packed[];
}, 180_000);

afterAll(() => work.remove());

const tarball = (name: string) => {
  const found = packed.find((entry) => entry.name === name);
  if (found === undefined) throw new Error(`${name} was not packed`);
  return join(packDir, found.filename);
};

describe.each(publicPackages.map(({ name }) => [name]))("the %s tarball", (name) => {
  it("ships its build, its types and its README, and no tests", () => {
    const paths = packed.find((entry) => entry.name === name)?.files.map((file) => file.path);
    expect(paths).toContain("dist/index.js");
    expect(paths).toContain("dist/index.d.ts");
    expect(paths).toContain("README.md");
    expect(paths?.filter((path) => /\.test\.|(^|\/)test\//.test(path))).toEqual([]);
  });

  // Concurrent: the linters spend their time starting up, not on these small packages.
  it.concurrent("passes publint and @arethetypeswrong/cli (ESM-only profile)", async () => {
    const [publint, attw] = await Promise.allSettled([
      run(bin("publint"), ["run", tarball(name), "--strict"], { cwd: work.path }),
      run(bin("attw"), [tarball(name), "--profile", "esm-only", "--no-definitely-typed"], {
        cwd: work.path,
        env: { ...process.env, FORCE_COLOR: "0" },
      }),
    ]);
    const failure = (result: PromiseSettledResult<unknown>) =>
      result.status === "rejected" ? String(result.reason) : "";
    expect(failure(publint)).toBe("");
    expect(failure(attw)).toBe("");
  }, 120_000);
});

describe("an app outside the workspace, installed from the tarballs", () => {
  beforeAll(async () => {
    await mkdir(join(appDir, "src"), { recursive: true });
    await writeFile(
      join(appDir, "package.json"),
      JSON.stringify({ name: "outside-app", private: true, type: "module" }),
    );
    // What an embedding host adds next to @macp/*: its Node types and the Connect client.
    const extras = await Promise.all(
      ["@types/node", "@connectrpc/connect", "@connectrpc/connect-node", "@bufbuild/protobuf"].map(
        async (name) => `${name}@${await workspaceVersion(name)}`,
      ),
    );
    await run(
      npm,
      [
        "install",
        "--prefer-offline",
        "--no-audit",
        "--no-fund",
        ...publicPackages.map(({ name }) => tarball(name)),
        ...extras,
      ],
      { cwd: appDir, env: npmEnv(), maxBuffer: 16 * 1024 * 1024 },
    );
  }, 180_000);

  it("compiles the embedding guide's code against the shipped types, and runs it", async () => {
    const guide = await readFile(join(REPO_DIR, "docs", "guides", "embedding.md"), "utf8");
    const example = /```ts\n(import \* as http2 from "node:http2";[\s\S]*?)```/.exec(guide)?.[1];
    expect(example).toBeDefined();
    await writeFile(join(appDir, "src", "embedding.ts"), example ?? "");
    // Every entry point of every package must load from the install, not only those the guide uses.
    const entryPoints = publicPackages.flatMap(({ name, exports = {} }) =>
      Object.keys(exports)
        .filter((subpath) => !subpath.endsWith(".json"))
        .map((subpath) => `${name}${subpath.slice(1)}`),
    );
    await writeFile(
      join(appDir, "src", "main.ts"),
      `import { mkdtempSync } from "node:fs";
import { connect } from "node:http2";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { MACPRuntimeService } from "@macp/proto";
import { startService } from "./embedding.js";

for (const entryPoint of ${JSON.stringify(entryPoints)}) await import(entryPoint);
const service = await startService({ port: 0, dataDir: mkdtempSync(join(tmpdir(), "outside-app-")) });
const { port } = service.server.address() as AddressInfo;
const client = createClient(
  MACPRuntimeService,
  createGrpcTransport({ baseUrl: \`http://127.0.0.1:\${port}\` }),
);
const init = await client.initialize({ supportedProtocolVersions: ["1.0"] });
const h2 = connect(\`http://127.0.0.1:\${port}\`);
const status = await new Promise<string>((resolve, reject) => {
  const request = h2.request({ ":path": "/status" }).setEncoding("utf8");
  let body = "";
  request.on("data", (chunk: string) => { body += chunk; });
  request.on("end", () => resolve(body));
  request.on("error", reject);
});
h2.close();
await service.close(1000);
console.log(JSON.stringify({ selected: init.selectedProtocolVersion, modes: init.supportedModes.length, status }));
`,
    );
    await writeFile(
      join(appDir, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          module: "nodenext",
          target: "es2023",
          strict: true,
          types: ["node"],
          rootDir: "src",
          outDir: "dist",
        },
        include: ["src"],
      }),
    );
    await run(bin("tsc"), ["-p", "."], { cwd: appDir });
    const { stdout } = await run(process.execPath, [join("dist", "main.js")], { cwd: appDir });
    expect(JSON.parse(stdout)).toEqual({
      selected: "1.0",
      modes: 6,
      status: '{"ok":true}',
    });
  }, 120_000);

  it("runs `npx macp-runtime --version` and the installed bin's `--help`", async () => {
    const runtime = await readManifest(join(REPO_DIR, "packages", "runtime"));
    const version = await run(npx, ["macp-runtime", "--version"], { cwd: appDir, env: npmEnv() });
    expect(version.stdout).toBe(`${runtime.version}\n`);
    const help = await run(join(appDir, "node_modules", ".bin", "macp-runtime"), ["--help"]);
    expect(help.stdout).toContain("MACP_BIND_ADDR");
  }, 60_000);
});
