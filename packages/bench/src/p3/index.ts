// Benchmarks P3 (durable Send throughput) and P4 from disk (recovery from a file store).

export {
  formatP4Disk,
  type P4DiskOptions,
  type P4DiskResult,
  type P4DiskShape,
  runP4Disk,
} from "./disk-recovery.js";
export {
  formatP3,
  type P3FileStats,
  type P3Options,
  type P3Result,
  runP3,
} from "./durable-send.js";
