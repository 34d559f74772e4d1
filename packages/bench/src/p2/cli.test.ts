// The P2 command line's answers that start no server: help, and refused options.
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const CLI = fileURLToPath(new URL("./cli.ts", import.meta.url));
const REPO = fileURLToPath(new URL("../../../..", import.meta.url));

function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--import", "tsx", CLI, ...args],
      { cwd: REPO },
      (error, stdout, stderr) => {
        resolve({ code: error === null ? 0 : Number(error.code), stdout, stderr });
      },
    );
  });
}

describe("the P2 command line", () => {
  it("prints its options and the targets for --help", async () => {
    const { code, stdout } = await runCli(["--help"]);
    expect(code).toBe(0);
    expect(stdout).toContain("--rounds <n>");
    expect(stdout).toContain("runtime-grpc-js, grpc-js-echo");
  });

  it.each([
    [["--bogus"], "Unknown option '--bogus'"],
    [["--rounds", "0"], '--rounds must be a whole number of at least 1, not "0"'],
    [["--duration", "1.5"], "--duration must be a whole number"],
    [["--warmup", ""], "--warmup must be a whole number of at least 0"],
    [["--targets", "runtime-grpc-js,nginx"], "--targets: unknown target nginx"],
  ])("refuses %j with a message and the usage, exit status 2", async (args, message) => {
    const { code, stdout, stderr } = await runCli(args);
    expect(code).toBe(2);
    expect(stdout).toBe("");
    expect(stderr).toContain(message);
    expect(stderr).toContain("usage:");
  });
});
