// What StreamTable is for, measured in V8 itself: a churning table whose
// storage is already in the old generation. Each case runs in a fresh
// process, so nothing else in the heap moves the figures; they are bytes, not
// times, and the same on every run.
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const run = promisify(execFile);
const CHILD = fileURLToPath(new URL("./churn-child.ts", import.meta.url));
const CALLS = 20_000;

async function promotedBytes(table: "map" | "stream-table"): Promise<number> {
  const { stdout } = await run(
    process.execPath,
    ["--expose-gc", "--import", "tsx", CHILD, table === "map" ? "map" : "table", String(CALLS)],
    { cwd: fileURLToPath(new URL("../../..", import.meta.url)) },
  );
  return (JSON.parse(stdout) as { promotedBytes: number }).promotedBytes;
}

describe("a long-lived table that every call passes through", () => {
  it("as a Map, lets minor GCs promote every call's objects (why StreamTable exists)", async () => {
    // About 270 bytes per call churn through the table.
    expect(await promotedBytes("map")).toBeGreaterThan(CALLS * 200);
  });

  it("as a StreamTable, lets them die young", async () => {
    expect(await promotedBytes("stream-table")).toBeLessThan(CALLS * 5);
  });
});
