import { Code, ConnectError } from "@connectrpc/connect";
import { status } from "@grpc/grpc-js";
import { statusCodeOf, toStatusError } from "@macp/connect";
import { ErrorCode, macpError } from "@macp/core";
import { ERROR_DETAILS_TRAILER } from "@macp/core/wire";
import { GrpcStatusError, toServiceError } from "@macp/grpc";
import { describe, expect, it } from "vitest";

describe("GrpcStatusError.of", () => {
  it.each(Object.values(ErrorCode))(
    "gives %s the status and message the Connect transport gives it",
    (code) => {
      const error = GrpcStatusError.of(macpError(code, "why"));
      expect(error.code).toBe(statusCodeOf(code));
      expect(error.details).toBe(toStatusError(macpError(code, "why")).rawMessage);
    },
  );

  it("carries POLICY_DENIED reasons in the macp-error-details-bin trailer", () => {
    const error = GrpcStatusError.of(
      macpError(ErrorCode.POLICY_DENIED, "denied", ["quorum", "veto"]),
    );
    expect(error.code).toBe(status.FAILED_PRECONDITION);
    const [trailer] = error.metadata.get(ERROR_DETAILS_TRAILER);
    expect(Buffer.isBuffer(trailer)).toBe(true);
    expect(JSON.parse(String(trailer))).toEqual({ reasons: ["quorum", "veto"] });
  });

  it("adds no trailer when there are no reasons", () => {
    const error = GrpcStatusError.of(macpError(ErrorCode.FORBIDDEN, "not yours"));
    expect(error.metadata.get(ERROR_DETAILS_TRAILER)).toEqual([]);
  });
});

describe("toServiceError", () => {
  it("keeps a GrpcStatusError's status", () => {
    const error = new GrpcStatusError(status.UNAVAILABLE, "going away");
    expect(toServiceError(error)).toMatchObject({
      code: status.UNAVAILABLE,
      details: "going away",
    });
  });

  it("keeps the status of a ConnectError thrown by a shared authenticate hook", () => {
    const error = new ConnectError("token revoked", Code.PermissionDenied);
    expect(toServiceError(error)).toMatchObject({
      code: status.PERMISSION_DENIED,
      details: "token revoked",
    });
  });

  it("answers anything else with INTERNAL and its message", () => {
    expect(toServiceError(new Error("boom"))).toMatchObject({
      code: status.INTERNAL,
      details: "boom",
    });
    expect(toServiceError("text")).toMatchObject({ code: status.INTERNAL, details: "text" });
    const systemError = Object.assign(new Error("socket"), { code: "ECONNRESET" });
    expect(toServiceError(systemError)).toMatchObject({ code: status.INTERNAL });
  });
});
