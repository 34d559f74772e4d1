import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createDevIdentity, type MacpRuntime } from "@macp/core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startThrowawayPostgres, type ThrowawayPostgres } from "../src/testing/index.js";

let db: ThrowawayPostgres;

beforeAll(async () => {
  db = await startThrowawayPostgres();
});

afterAll(async () => {
  await db?.stop();
});

// The README's examples must run, or they do not belong in the README.
it("runs the README example: an instance started later sees a policy registered on another", async () => {
  const readme = await readFile(new URL("../README.md", import.meta.url), "utf8");
  const code = /```ts\n([\s\S]*?)```/.exec(readme)?.[1];
  expect(code).toBeDefined();
  const directory = await mkdtemp(join(tmpdir(), "macp-pg-readme-"));
  try {
    const module = join(directory, "example.ts");
    await writeFile(module, code ?? "");
    const { startInstance } = (await import(module)) as {
      startInstance(url: string): Promise<MacpRuntime>;
    };
    const url = await db.createDatabase("readme");
    const first = await startInstance(url);
    const second = await startInstance(url);
    const admin = createDevIdentity("agent://admin");
    const registered = first.registerPolicy(
      {
        $typeName: "macp.v1.PolicyDescriptor",
        policyId: "policy.readme",
        mode: "macp.mode.decision.v1",
        description: "",
        rules: "{}",
        schemaVersion: 1,
        registeredAtUnixMs: 0n,
      },
      admin,
    );
    expect(registered.isOk() && registered.value.ok).toBe(true);
    expect((await first.registryCommitted?.())?.isOk()).toBe(true);
    const third = await startInstance(url);
    expect(third.getPolicy("policy.readme", admin).isOk()).toBe(true);
    for (const runtime of [first, second, third]) await runtime.close();
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
});
