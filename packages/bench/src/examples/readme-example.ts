// The example in packages/bench/README.md, verbatim (readme-example.test.ts checks it; it is never run in tests).
import { formatP2Summary, runP1, runP2 } from "@macp/bench";

export async function runShortBenchmarks() {
  // P1 runs in this process: the kernel's cost of one accepted message, as a number.
  const p1 = await runP1();
  // A short P2 (the full one takes minutes): one round, two servers, 2 s each after 1 s of warm-up.
  // P2 starts the built runtime and its helper processes from dist: `npm run build` first.
  const p2 = await runP2({
    targets: ["runtime-grpc-js", "grpc-js-echo"],
    rounds: 1,
    warmupMs: 1000,
    durationMs: 2000,
    log: (line) => console.error(line),
  });
  return {
    p1MicrosPerMessage: p1.microsPerMessage,
    p2Report: formatP2Summary(p2),
    // The runtime's server CPU per call ÷ a bare grpc-js echo server's.
    p2CpuPerCallRatio: p2.runtimeVsGrpcJsEcho?.cpuPerCall,
  };
}
