import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { MacpRuntime } from "@macp/core";
import { expect, it } from "vitest";
import type { FileStore } from "./index.js";

// The README's example must run, or it does not belong in the README.
it("runs the README example", async () => {
  const readme = await readFile(new URL("../README.md", import.meta.url), "utf8");
  const code = /```ts\n([\s\S]*?)```/.exec(readme)?.[1];
  expect(code).toBeDefined();
  const directory = await mkdtemp(join(tmpdir(), "macp-store-readme-"));
  try {
    const module = join(directory, "example.ts");
    await writeFile(module, code ?? "");
    const { startRuntime } = (await import(module)) as {
      startRuntime(directory: string): Promise<{ runtime: MacpRuntime; store: FileStore }>;
    };
    const data = join(directory, "data");
    const first = await startRuntime(data);
    await first.runtime.close();
    const second = await startRuntime(data);
    expect(second.store.directory).toBe(data);
    await second.runtime.close();
    // Closing the runtime closed its store.
    await expect(second.store.tombstones()).rejects.toMatchObject({ code: "CLOSED" });
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
});
