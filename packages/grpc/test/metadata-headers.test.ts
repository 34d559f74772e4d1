import { Metadata } from "@grpc/grpc-js";
import { headersOf } from "@macp/grpc";
import { describe, expect, it } from "vitest";

function metadata(): Metadata {
  const result = new Metadata();
  result.set("authorization", "Bearer agent://alice");
  result.add("x-trace", "a");
  result.add("x-trace", "b");
  result.set("macp-error-details-bin", Buffer.from([1, 2, 3]));
  return result;
}

describe("headersOf", () => {
  it("reads text entries case-insensitively and joins repeated ones", () => {
    const headers = headersOf(metadata());
    expect(headers.get("Authorization")).toBe("Bearer agent://alice");
    expect(headers.get("x-trace")).toBe("a, b");
    expect(headers.has("x-macp-token")).toBe(false);
    expect(headers.get("x-macp-token")).toBeNull();
  });

  it("leaves binary entries out", () => {
    const headers = headersOf(metadata());
    expect(headers.get("macp-error-details-bin")).toBeNull();
    expect([...headers.keys()]).toEqual(["authorization", "x-trace"]);
  });

  it("iterates like Headers", () => {
    const seen: string[] = [];
    headersOf(metadata()).forEach((value, key) => {
      seen.push(`${key}=${value}`);
    });
    expect(seen).toEqual(["authorization=Bearer agent://alice", "x-trace=a, b"]);
  });

  it("changes a copy, never the call's metadata", () => {
    const source = metadata();
    const headers = headersOf(source);
    headers.set("authorization", "Bearer agent://mallory");
    headers.delete("x-trace");
    headers.append("x-extra", "1");
    expect(headers.get("authorization")).toBe("Bearer agent://mallory");
    expect(headers.has("x-trace")).toBe(false);
    expect([...headers.entries()]).toEqual([
      ["authorization", "Bearer agent://mallory"],
      ["x-extra", "1"],
    ]);
    expect(source.get("authorization")).toEqual(["Bearer agent://alice"]);
  });
});
