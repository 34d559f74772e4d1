// The benchmark CLIs' answers that start nothing: help, and refused command lines.
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const REPO = fileURLToPath(new URL("../../..", import.meta.url));
const P2 = fileURLToPath(new URL("./p2/cli.ts", import.meta.url));
const SOAK = fileURLToPath(new URL("./soak/main.ts", import.meta.url));

function run(
  cli: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--import", "tsx", cli, ...args],
      { cwd: REPO },
      (error, stdout, stderr) => {
        resolve({ code: error === null ? 0 : Number(error.code), stdout, stderr });
      },
    );
  });
}

describe.each([
  ["the P2 command line", P2, "--rounds <n>"],
  ["the soak command line", SOAK, "--minutes <n>"],
])("%s", (_name, cli, anOption) => {
  it("prints its options for --help", async () => {
    const { code, stdout, stderr } = await run(cli, ["--help"]);
    expect(code).toBe(0);
    expect(stdout).toContain(anOption);
    expect(stderr).toBe("");
  });

  it("refuses an option it does not know with the message and the usage, exit status 2", async () => {
    const { code, stdout, stderr } = await run(cli, ["--bogus"]);
    expect(code).toBe(2);
    expect(stdout).toBe("");
    expect(stderr).toContain("Unknown option '--bogus'");
    expect(stderr).toContain(anOption);
  });
});

describe("refused values", () => {
  it.each([
    ["p2", P2, ["--rounds", "0"], "p2: --rounds must be a whole number of at least 1, not 0"],
    ["p2", P2, ["--duration", "1.5"], 'p2: --duration must be a whole number, not "1.5"'],
    ["p2", P2, ["--warmup", ""], 'p2: --warmup must be a whole number, not ""'],
    ["p2", P2, ["--warmup=-5"], "p2: --warmup must be a whole number of at least 0, not -5"],
    ["p2", P2, ["--targets", "runtime-grpc-js,nginx"], "p2: --targets: unknown target nginx"],
    ["soak", SOAK, ["--minutes", "0"], "soak: --minutes must be more than 0"],
    ["soak", SOAK, ["--rate", "fast"], 'soak: --rate must be a number, not "fast"'],
    [
      "soak",
      SOAK,
      ["--disk-retention", "1.5"],
      'soak: --disk-retention must be a whole number, not "1.5"',
    ],
    ["soak", SOAK, ["--store", "s3"], 'soak: --store must be file or memory, not "s3"'],
    ["soak", SOAK, ["--listener", "udp"], 'soak: --listener must be grpc or connect, not "udp"'],
  ])("%s %j", async (_program, cli, args, message) => {
    const { code, stdout, stderr } = await run(cli, args);
    expect(code).toBe(2);
    expect(stdout).toBe("");
    expect(stderr.split("\n")[0]).toBe(message);
    expect(stderr).toContain("usage:");
  });
});
