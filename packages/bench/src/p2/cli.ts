// `node packages/bench/dist/p2/cli.js [--profile] [--duration <ms>] [--warmup <ms>]`
// runs P2 alone and prints its summary (build first: `npm run build`).

import { parseArgs } from "node:util";
import { formatP2Summary, runP2 } from "./run-p2.js";

const { values } = parseArgs({
  options: {
    profile: { type: "boolean", default: false },
    duration: { type: "string" },
    warmup: { type: "string" },
    callers: { type: "string" },
    connections: { type: "string" },
  },
});
const number = (text: string | undefined) => (text === undefined ? undefined : Number(text));

const result = await runP2({
  profile: values.profile,
  durationMs: number(values.duration),
  warmupMs: number(values.warmup),
  callers: number(values.callers),
  connections: number(values.connections),
  log: (line) => console.error(line),
});
console.log(formatP2Summary(result));
