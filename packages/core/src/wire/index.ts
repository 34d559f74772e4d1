// @macp/core/wire: what every transport shares to put the kernel's answers on
// the wire — the one error table (MacpError → NACK or gRPC status), the
// StreamSession pipe, linked abort signals and the health state. Pure: no I/O.

export { createHealthState, type HealthState, watchHealth } from "./health-state.js";
export { type LinkedSignal, linkSignals } from "./linked-signal.js";
export { pipeSessionStream, type StreamSessionResponseInit } from "./pipe-session-stream.js";
export {
  type AckOrStatus,
  controlRefusal,
  ERROR_DETAILS_TRAILER,
  GrpcStatus,
  type NackContext,
  nackAck,
  type Refusal,
  sendRefusal,
  statusOf,
  streamTerminationOf,
  toWireError,
  type WireRule,
  type WireStatus,
  wireRuleOf,
} from "./wire-rules.js";
