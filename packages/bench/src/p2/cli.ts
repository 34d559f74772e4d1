// `node packages/bench/dist/p2/cli.js [options]` runs P2 alone and prints its
// summary (build first: `npm run build`); `--help` lists the options.

import { readCommandLine, stringOptions } from "../command-line.js";
import { formatP2Summary, P2_ALL_TARGETS, type P2Target, runP2 } from "./run-p2.js";

const USAGE = `usage: node packages/bench/dist/p2/cli.js [options]

  --targets <list>          servers to measure, comma-separated (default: all but macp-grpc-stub)
  --rounds <n>              rounds; each starts every server afresh (default 3)
  --slices <n>              turns each server's window is loaded in (default 6)
  --duration <ms>           measured window per server (default 6000)
  --warmup <ms>             unmeasured load before it (default 1500)
  --callers <n>             concurrent callers (default 64)
  --connections <n>         HTTP/2 connections they share (default 8)
  --profile                 also profile the servers (--cpu-prof) and print where time goes
  --profile-targets <list>  the servers to profile (default: runtime-grpc-js, grpc-js-echo)
  --help                    this text

targets: ${P2_ALL_TARGETS.join(", ")}
`;

const { values, commandLine } = readCommandLine("p2", USAGE, {
  profile: { type: "boolean", default: false },
  ...stringOptions(
    "duration",
    "warmup",
    "rounds",
    "slices",
    "callers",
    "connections",
    "targets",
    "profile-targets",
  ),
});

const count = (option: string, text: string | undefined, least = 1) =>
  commandLine.number(option, text, { least, whole: true });

function targets(option: string, text: string | undefined): readonly P2Target[] | undefined {
  if (text === undefined) return undefined;
  const names = text.split(",");
  const unknown = names.filter((name) => !(P2_ALL_TARGETS as readonly string[]).includes(name));
  if (unknown.length > 0) commandLine.refuse(`--${option}: unknown target ${unknown.join(", ")}`);
  return names as P2Target[];
}

const result = await runP2({
  targets: targets("targets", values.targets),
  profileTargets: targets("profile-targets", values["profile-targets"]),
  profile: values.profile,
  durationMs: count("duration", values.duration),
  warmupMs: count("warmup", values.warmup, 0),
  rounds: count("rounds", values.rounds),
  slices: count("slices", values.slices),
  callers: count("callers", values.callers),
  connections: count("connections", values.connections),
  log: (line) => console.error(line),
});
console.log(formatP2Summary(result));
