import { Metadata, type ServiceError, status } from "@grpc/grpc-js";
import type { MacpError } from "@macp/core";
import { ERROR_DETAILS_TRAILER, statusOf, type WireStatus } from "@macp/core/wire";

/** Ends a call with a gRPC status: what the handlers throw, and what `toServiceError` reads. */
export class GrpcStatusError extends Error {
  readonly code: status;
  readonly details: string;
  readonly metadata: Metadata;
  constructor(code: status, details: string, metadata: Metadata = new Metadata()) {
    super(details);
    this.name = "GrpcStatusError";
    this.code = code;
    this.details = details;
    this.metadata = metadata;
  }

  /** A status from @macp/core's wire table; POLICY_DENIED reasons go in the details trailer. */
  static fromWire(wire: WireStatus): GrpcStatusError {
    const metadata = new Metadata();
    if (wire.details !== undefined) {
      metadata.set(ERROR_DETAILS_TRAILER, Buffer.from(wire.details));
    }
    return new GrpcStatusError(wire.code as number as status, wire.message, metadata);
  }

  /** The status of an RPC that answers a MacpError with a status (core.md §19.2, ERR-6, ERR-7). */
  static of(error: MacpError): GrpcStatusError {
    return GrpcStatusError.fromWire(statusOf(error));
  }
}

/**
 * The status grpc-js ends the call with for anything a handler (or the
 * authenticate hook) threw or rejected with: a GrpcStatusError as it is; any
 * error with a numeric gRPC `code` (a Connect `ConnectError`, a grpc-js
 * status object) with that code, so a hook shared with @macp/connect behaves
 * the same on both; anything else INTERNAL with its message, as Connect does.
 */
export function toServiceError(error: unknown): Partial<ServiceError> {
  if (error instanceof GrpcStatusError) {
    return { code: error.code, details: error.details, metadata: error.metadata };
  }
  const message = error instanceof Error ? error.message : String(error);
  if (typeof error === "object" && error !== null && "code" in error) {
    const code = error.code;
    if (typeof code === "number" && Number.isInteger(code) && code > 0 && code <= 16) {
      // ConnectError's `message` is prefixed with "[code]"; its `rawMessage` is the text.
      const raw =
        "rawMessage" in error && typeof error.rawMessage === "string" ? error.rawMessage : message;
      return { code, details: raw, metadata: new Metadata() };
    }
  }
  return { code: status.INTERNAL, details: message, metadata: new Metadata() };
}
