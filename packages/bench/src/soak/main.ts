// `npm run soak -- [--minutes 4] [--warmup 2] [--store file|memory] [--rate 200]
//                  [--retention 60] [--disk-retention SECS] [--cleanup 10] [--sample 15]
//                  [--concurrency 64] [--snapshots DIR]`
// Prints the server's memory curve and its growth rate after warm-up. With
// --snapshots, also the kinds of objects that grew between the heap snapshot
// at the end of warm-up and the one at the end.

import { parseArgs } from "node:util";
import { compareHeapSnapshots } from "./compare-heap-snapshots.js";
import { formatSoak, runSoak, type SoakStore } from "./run-soak.js";

const { values } = parseArgs({
  options: {
    minutes: { type: "string" },
    warmup: { type: "string" },
    store: { type: "string" },
    rate: { type: "string" },
    retention: { type: "string" },
    "disk-retention": { type: "string" },
    cleanup: { type: "string" },
    sample: { type: "string" },
    concurrency: { type: "string" },
    snapshots: { type: "string" },
  },
});

function positive(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number`);
  return n;
}

function nonNegative(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a whole number of seconds`);
  return n;
}

const store = values.store ?? "file";
if (store !== "file" && store !== "memory") throw new Error("--store must be file or memory");

const result = await runSoak({
  minutes: positive("minutes", values.minutes),
  warmupMinutes: positive("warmup", values.warmup),
  store: store as SoakStore,
  rate: positive("rate", values.rate),
  retentionSecs: positive("retention", values.retention),
  diskRetentionSecs: nonNegative("disk-retention", values["disk-retention"]),
  cleanupSecs: positive("cleanup", values.cleanup),
  sampleSecs: positive("sample", values.sample),
  concurrency: positive("concurrency", values.concurrency),
  snapshotDir: values.snapshots,
  log: (line) => console.error(line),
});
for (const line of formatSoak(result)) console.log(line);
const [before, after] = result.snapshots;
if (before !== undefined && after !== undefined) {
  console.log("heap growth by kind of object, end of warm-up → end:");
  for (const row of await compareHeapSnapshots(before, after)) {
    console.log(
      `  ${(row.bytesDelta / 1024).toFixed(1).padStart(10)} KiB  ${String(row.countDelta).padStart(8)} objects  ${row.name}`,
    );
  }
}
