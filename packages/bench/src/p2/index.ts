// Benchmark P2: Send throughput over gRPC, runtime vs bare echo servers.

export { type ProfileFrame, type ProfileSummary, summariseCpuProfile } from "./profile.js";
export {
  formatP2Summary,
  P2_ALL_TARGETS,
  P2_TARGETS,
  type P2Options,
  type P2Profile,
  type P2Ratio,
  type P2Result,
  type P2RoundRatio,
  type P2Target,
  type P2TargetResult,
  type P2TargetSummary,
  runP2,
} from "./run-p2.js";
export {
  readThreadCpu,
  type ThreadCpu,
  type ThreadCpuSnapshot,
  threadCpuBetween,
} from "./thread-cpu.js";
