// @macp/grpc: the MACPRuntimeService and grpc.health.v1 on @grpc/grpc-js,
// for the gRPC SDKs. Same runtime, authentication hook and wire table as
// @macp/connect; gRPC only (gRPC-Web and Connect stay with @macp/connect).

export {
  addMacpGrpcServices,
  type CallTracker,
  type MacpGrpcServicesOptions,
} from "./add-macp-grpc-services.js";
export { grpcServiceDefinition } from "./grpc-service-definition.js";
export { GrpcStatusError, toServiceError } from "./grpc-status-error.js";
export { headersOf } from "./metadata-headers.js";
export { routeGrpcJsLogs } from "./route-grpc-js-logs.js";
export {
  DEFAULT_MAX_RECEIVE_MESSAGE_BYTES,
  type MacpGrpcServer,
  type MacpGrpcServerCloseOptions,
  type MacpGrpcServerOptions,
  type MacpGrpcTlsOptions,
  startMacpGrpcServer,
} from "./start-macp-grpc-server.js";
