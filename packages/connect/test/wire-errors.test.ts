// The error table of docs/reference/errors.md, row by row.

import { Code, ConnectError, decodeBinaryHeader } from "@connectrpc/connect";
import {
  controlFailure,
  ERROR_DETAILS_TRAILER,
  sendFailure,
  statusCodeOf,
  toStatusError,
  toStreamTerminationError,
} from "@macp/connect";
import { ErrorCode, macpError } from "@macp/core";
import { SessionState } from "@macp/proto";
import { describe, expect, it } from "vitest";

const STATUS: Record<ErrorCode, Code> = {
  UNAUTHENTICATED: Code.Unauthenticated,
  FORBIDDEN: Code.PermissionDenied,
  SESSION_NOT_FOUND: Code.NotFound,
  SESSION_NOT_OPEN: Code.FailedPrecondition,
  SESSION_ALREADY_EXISTS: Code.AlreadyExists,
  INVALID_ENVELOPE: Code.FailedPrecondition,
  UNSUPPORTED_PROTOCOL_VERSION: Code.FailedPrecondition,
  MODE_NOT_SUPPORTED: Code.FailedPrecondition,
  PAYLOAD_TOO_LARGE: Code.ResourceExhausted,
  RATE_LIMITED: Code.ResourceExhausted,
  INVALID_SESSION_ID: Code.InvalidArgument,
  INTERNAL_ERROR: Code.Internal,
  UNKNOWN_POLICY_VERSION: Code.FailedPrecondition,
  POLICY_DENIED: Code.FailedPrecondition,
  INVALID_POLICY_DEFINITION: Code.InvalidArgument,
  INVALID_REQUEST: Code.InvalidArgument,
  NOT_FOUND: Code.NotFound,
  READ_ONLY: Code.FailedPrecondition,
  SUBSCRIBER_LAGGED: Code.ResourceExhausted,
};

const codes = Object.values(ErrorCode);

describe("status mapping (core.md §19.2, ERR-6)", () => {
  it.each(codes)("%s", (code) => {
    expect(statusCodeOf(code)).toBe(STATUS[code]);
    const error = toStatusError(macpError(code, "why"));
    expect(error.code).toBe(STATUS[code]);
    expect(error.rawMessage).toBe(`${code}: why`);
  });

  it("does not repeat a code prefix the message already has", () => {
    const error = toStatusError(macpError(ErrorCode.FORBIDDEN, "FORBIDDEN: not yours"));
    expect(error.rawMessage).toBe("FORBIDDEN: not yours");
  });

  it("carries POLICY_DENIED reasons in the macp-error-details-bin trailer", () => {
    const error = toStatusError(macpError(ErrorCode.POLICY_DENIED, "denied", ["quorum", "veto"]));
    expect(error.code).toBe(Code.FailedPrecondition);
    const trailer = error.metadata.get(ERROR_DETAILS_TRAILER);
    expect(trailer).not.toBeNull();
    const json = new TextDecoder().decode(decodeBinaryHeader(trailer ?? ""));
    expect(JSON.parse(json)).toEqual({ reasons: ["quorum", "veto"] });
  });
});

describe("Send (ERR-3)", () => {
  const context = { sessionId: "s-1", messageId: "m-1", now: 1234 };

  it.each(codes.filter((code) => code !== ErrorCode.INVALID_REQUEST))("%s is a NACK", (code) => {
    const ack = sendFailure(macpError(code, "why"), context);
    expect(ack).toMatchObject({
      ok: false,
      duplicate: false,
      messageId: "m-1",
      sessionId: "s-1",
      acceptedAtUnixMs: 1234n,
      sessionState: SessionState.UNSPECIFIED,
      error: { code, message: "why", sessionId: "s-1", messageId: "m-1" },
    });
    expect(ack.error?.details).toEqual(new Uint8Array(0));
  });

  it("INVALID_REQUEST (no envelope) is INVALID_ARGUMENT", () => {
    expect(() => sendFailure(macpError(ErrorCode.INVALID_REQUEST, "no envelope"), context)).toThrow(
      expect.objectContaining({ code: Code.InvalidArgument }),
    );
  });

  it("POLICY_DENIED puts its reasons in error.details", () => {
    const ack = sendFailure(macpError(ErrorCode.POLICY_DENIED, "denied", ["r1"]), context);
    const details = new TextDecoder().decode(ack.error?.details);
    expect(JSON.parse(details)).toEqual({ reasons: ["r1"] });
  });
});

describe("Cancel / Suspend / Resume (CTL-2, CTL-4)", () => {
  const statuses: [ErrorCode, Code][] = [
    [ErrorCode.UNAUTHENTICATED, Code.Unauthenticated],
    [ErrorCode.SESSION_NOT_FOUND, Code.NotFound],
    [ErrorCode.FORBIDDEN, Code.PermissionDenied],
    [ErrorCode.INVALID_REQUEST, Code.InvalidArgument],
    [ErrorCode.NOT_FOUND, Code.NotFound],
  ];

  it.each(statuses)("%s is a status", (code, status) => {
    let thrown: unknown;
    try {
      controlFailure(macpError(code, "why"), "s-1", 1);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ConnectError);
    expect((thrown as ConnectError).code).toBe(status);
    expect((thrown as ConnectError).rawMessage).toBe(`${code}: why`);
  });

  it.each(codes.filter((code) => !statuses.some(([status]) => status === code)))(
    "%s is a NACK with an empty message id",
    (code) => {
      const ack = controlFailure(macpError(code, "why"), "s-1", 99);
      expect(ack).toMatchObject({
        ok: false,
        messageId: "",
        sessionId: "s-1",
        acceptedAtUnixMs: 99n,
        sessionState: SessionState.UNSPECIFIED,
        error: { code, sessionId: "s-1", messageId: "" },
      });
    },
  );
});

describe("StreamSession termination (STR-10)", () => {
  it.each(codes)("%s never ends a stream with FAILED_PRECONDITION", (code) => {
    const status = toStreamTerminationError(macpError(code, "why")).code;
    expect(status).not.toBe(Code.FailedPrecondition);
    expect(status).toBe(
      STATUS[code] === Code.FailedPrecondition ? Code.InvalidArgument : STATUS[code],
    );
  });
});
