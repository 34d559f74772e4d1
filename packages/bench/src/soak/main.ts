// `npm run soak -- [options]` (`--help` lists them).
// Prints the server's memory curve and its growth rate after warm-up. With
// --snapshots, also the kinds of objects that grew between the heap snapshot
// at the end of warm-up and the one at the end.

import { readCommandLine, stringOptions } from "../command-line.js";
import { compareHeapSnapshots } from "./compare-heap-snapshots.js";
import { formatSoak, runSoak, type SoakListener, type SoakStore } from "./run-soak.js";

const USAGE = `usage: npm run soak -- [options]

  --minutes <n>          measured run after warm-up (default 4)
  --warmup <n>           warm-up minutes (default 2)
  --store file|memory    the runtime's store (default file)
  --listener grpc|connect  the listener the load goes to, over gRPC (default grpc)
  --rate <n>             messages per second (default 200)
  --retention <secs>     MACP_SESSION_RETENTION_SECS (default 60)
  --disk-retention <secs>  MACP_SESSION_DISK_RETENTION_SECS, 0 keeps logs (default: --retention)
  --cleanup <secs>       MACP_CLEANUP_INTERVAL_SECS (default 10)
  --sample <secs>        between memory samples (default 15)
  --concurrency <n>      sends in flight (default 64)
  --snapshots <dir>      write heap snapshots there and compare them
  --help                 this text
`;

const { values, commandLine } = readCommandLine(
  "soak",
  USAGE,
  stringOptions(
    "minutes",
    "warmup",
    "store",
    "listener",
    "rate",
    "retention",
    "disk-retention",
    "cleanup",
    "sample",
    "concurrency",
    "snapshots",
  ),
);

/** A positive amount (fractions allowed, e.g. --minutes 0.5). */
function positive(name: string, text: string | undefined): number | undefined {
  const value = commandLine.number(name, text, { least: 0, whole: false });
  if (value === 0) commandLine.refuse(`--${name} must be more than 0`);
  return value;
}

const store = values.store ?? "file";
if (store !== "file" && store !== "memory") {
  commandLine.refuse(`--store must be file or memory, not ${JSON.stringify(store)}`);
}

const listener = values.listener ?? "grpc";
if (listener !== "grpc" && listener !== "connect") {
  commandLine.refuse(`--listener must be grpc or connect, not ${JSON.stringify(listener)}`);
}

const result = await runSoak({
  minutes: positive("minutes", values.minutes),
  warmupMinutes: positive("warmup", values.warmup),
  store: store as SoakStore,
  listener: listener as SoakListener,
  rate: positive("rate", values.rate),
  retentionSecs: positive("retention", values.retention),
  diskRetentionSecs: commandLine.number("disk-retention", values["disk-retention"], {
    least: 0,
    whole: true,
  }),
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
