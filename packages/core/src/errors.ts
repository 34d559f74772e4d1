/** Every protocol error code the core produces (registry codes of RFC-MACP-0001 §12). */
export const ErrorCode = {
  UNAUTHENTICATED: "UNAUTHENTICATED",
  FORBIDDEN: "FORBIDDEN",
  SESSION_NOT_FOUND: "SESSION_NOT_FOUND",
  SESSION_NOT_OPEN: "SESSION_NOT_OPEN",
  SESSION_ALREADY_EXISTS: "SESSION_ALREADY_EXISTS",
  INVALID_ENVELOPE: "INVALID_ENVELOPE",
  UNSUPPORTED_PROTOCOL_VERSION: "UNSUPPORTED_PROTOCOL_VERSION",
  MODE_NOT_SUPPORTED: "MODE_NOT_SUPPORTED",
  PAYLOAD_TOO_LARGE: "PAYLOAD_TOO_LARGE",
  RATE_LIMITED: "RATE_LIMITED",
  INVALID_SESSION_ID: "INVALID_SESSION_ID",
  INTERNAL_ERROR: "INTERNAL_ERROR",
  UNKNOWN_POLICY_VERSION: "UNKNOWN_POLICY_VERSION",
  POLICY_DENIED: "POLICY_DENIED",
  INVALID_POLICY_DEFINITION: "INVALID_POLICY_DEFINITION",
  /**
   * Not a registry code: a request that is malformed as a whole (no envelope,
   * empty version list, a stream frame with neither envelope nor subscription,
   * a missing descriptor). Hosts answer it with gRPC INVALID_ARGUMENT.
   */
  INVALID_REQUEST: "INVALID_REQUEST",
  /** Not a registry code: a lookup by id (agent, policy) that found nothing. */
  NOT_FOUND: "NOT_FOUND",
  /** Not a registry code: the policy registry is read-only (MACP_POLICIES_DIR). */
  READ_ONLY: "READ_ONLY",
  /** Not a registry code: a subscriber fell too far behind and was dropped. */
  SUBSCRIBER_LAGGED: "SUBSCRIBER_LAGGED",
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** A protocol error as a value. Hosts turn it into a NACK, a status or an inline stream error. */
export interface MacpError {
  readonly code: ErrorCode;
  readonly message: string;
  /** POLICY_DENIED: the evaluator's deny reasons, sent as `{"reasons": [...]}` details. */
  readonly reasons?: readonly string[];
}

export function macpError(
  code: ErrorCode,
  message: string,
  reasons?: readonly string[],
): MacpError {
  return reasons === undefined ? { code, message } : { code, message, reasons };
}

/** The `details` bytes of a MACPError for this error: JSON reasons for POLICY_DENIED, else empty. */
export function errorDetails(error: MacpError): Uint8Array {
  if (error.reasons === undefined) return new Uint8Array(0);
  return new TextEncoder().encode(JSON.stringify({ reasons: error.reasons }));
}
