// The MACP wire contract as protobuf-es messages and the service descriptor.
// Core messages are exported flat; mode payloads live in one namespace per mode
// because several modes reuse the same message names (ProposalPayload, RejectPayload).

// The standard gRPC health service, served beside MACPRuntimeService.
export * as health from "./gen/grpc/health/v1/health_pb.js";
// The inspector's browser-friendly view of a runtime (not part of the MACP contract).
export * as inspector from "./gen/macp/inspector/v1/inspector_pb.js";
export * as decision from "./gen/macp/modes/decision/v1/decision_pb.js";
export * as handoff from "./gen/macp/modes/handoff/v1/handoff_pb.js";
export * as multiRound from "./gen/macp/modes/multi_round/v1/multi_round_pb.js";
export * as proposal from "./gen/macp/modes/proposal/v1/proposal_pb.js";
export * as quorum from "./gen/macp/modes/quorum/v1/quorum_pb.js";
export * as task from "./gen/macp/modes/task/v1/task_pb.js";
export * from "./gen/macp/v1/core_pb.js";
export * from "./gen/macp/v1/envelope_pb.js";
export * from "./gen/macp/v1/policy_pb.js";
