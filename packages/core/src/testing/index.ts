// @macp/core/testing: what tests of MACP runtimes, transports and stores share.
// A clock that moves only when told to, and envelope builders for the
// decision mode with sensible defaults. Not for production code.

export {
  accepted,
  commitmentEnvelope,
  envelope,
  extModeDescriptor,
  proposalEnvelope,
  refusal,
  type StartOptions,
  sessionId as newSessionId,
  startEnvelope,
  startPayload,
  take,
  voteEnvelope,
} from "./fixtures.js";
export { DEFAULT_EPOCH_MS, SimulatedClock } from "./simulated-clock.js";
