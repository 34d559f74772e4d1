// @macp/connect: the MACPRuntimeService on a Connect router (gRPC, gRPC-Web and
// Connect), the error mapping to the wire, and grpc.health.v1. The Node server
// lives in the `@macp/connect/node` subpath.

export { createHealthState, type HealthState } from "@macp/core/wire";
export {
  createMacpRoutes,
  DEFAULT_MAX_RECEIVE_MESSAGE_BYTES,
  type MacpRoutesOptions,
} from "./create-macp-routes.js";
export {
  controlFailure,
  ERROR_DETAILS_TRAILER,
  type NackContext,
  nackAck,
  sendFailure,
  statusCodeOf,
  toConnectError,
  toStatusError,
  toStreamTerminationError,
  toWireError,
} from "./wire-errors.js";
