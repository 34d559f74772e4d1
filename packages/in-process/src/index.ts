// @macp/in-process: run MACP agents against a real runtime in the same
// process (no sockets) on a simulated clock, for fast and deterministic tests.

export { DEFAULT_EPOCH_MS, SimulatedClock } from "@macp/core/testing";
export {
  type AgentTestHarness,
  type AgentTestHarnessOptions,
  createAgentTestHarness,
  type MacpClient,
} from "./agent-test-harness.js";
export {
  type AuthenticatingTransportOptions,
  createInProcessTransport,
  type FixedIdentityTransportOptions,
  type InProcessTransportCommonOptions,
  type InProcessTransportOptions,
} from "./in-process-transport.js";
export { recordTranscript } from "./record-transcript.js";
export { type TranscriptEntry, TranscriptRecorder } from "./transcript-recorder.js";
