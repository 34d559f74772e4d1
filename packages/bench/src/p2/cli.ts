// `node packages/bench/dist/p2/cli.js [--profile] [--duration <ms>] [--warmup <ms>] [--rounds <n>] [--slices <n>]
//   [--targets runtime-grpc-js,grpc-js-echo,...] [--profile-targets ...]`
// (targets: runtime-grpc-js, runtime-connect, grpc-js-echo, connect-echo, macp-grpc-stub)
// runs P2 alone and prints its summary (build first: `npm run build`).

import { parseArgs } from "node:util";
import { formatP2Summary, P2_ALL_TARGETS, type P2Target, runP2 } from "./run-p2.js";

const { values } = parseArgs({
  options: {
    profile: { type: "boolean", default: false },
    duration: { type: "string" },
    warmup: { type: "string" },
    rounds: { type: "string" },
    slices: { type: "string" },
    callers: { type: "string" },
    connections: { type: "string" },
    targets: { type: "string" },
    "profile-targets": { type: "string" },
  },
});
const number = (text: string | undefined) => (text === undefined ? undefined : Number(text));

function targets(text: string | undefined): readonly P2Target[] | undefined {
  if (text === undefined) return undefined;
  const names = text.split(",");
  const unknown = names.filter((name) => !(P2_ALL_TARGETS as readonly string[]).includes(name));
  if (unknown.length > 0)
    throw new Error(
      `unknown P2 targets ${unknown.join(", ")}; known: ${P2_ALL_TARGETS.join(", ")}`,
    );
  return names as P2Target[];
}

const result = await runP2({
  targets: targets(values.targets),
  profileTargets: targets(values["profile-targets"]),
  profile: values.profile,
  durationMs: number(values.duration),
  warmupMs: number(values.warmup),
  rounds: number(values.rounds),
  slices: number(values.slices),
  callers: number(values.callers),
  connections: number(values.connections),
  log: (line) => console.error(line),
});
console.log(formatP2Summary(result));
