// The protocol's conformance vectors and a runner that drives any MACP runtime through them.
export { encodeVectorPayload } from "./payloads.js";
export {
  type ConformanceDriver,
  ConformanceFailure,
  runVector,
  type StepResult,
} from "./runner.js";
export {
  type ConformanceVector,
  loadVectors,
  subsetMismatch,
  type VectorMessage,
} from "./vector.js";
