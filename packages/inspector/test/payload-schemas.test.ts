import { create, toBinary } from "@bufbuild/protobuf";
import { decodePayload, encodePayload } from "@macp/inspector";
import { decision, SessionStartPayloadSchema } from "@macp/proto";
import { describe, expect, it } from "vitest";

describe("payload decoding", () => {
  it("decodes mode and core payloads by message type", () => {
    const vote = toBinary(
      decision.VotePayloadSchema,
      create(decision.VotePayloadSchema, { proposalId: "p1", vote: "APPROVE" }),
    );
    expect(decodePayload("macp.mode.decision.v1", "Vote", vote)).toEqual({
      json: '{"proposalId":"p1","vote":"APPROVE"}',
      typeName: "macp.modes.decision.v1.VotePayload",
    });
    const start = toBinary(
      SessionStartPayloadSchema,
      create(SessionStartPayloadSchema, { participants: ["a"], ttlMs: 1000n }),
    );
    expect(JSON.parse(decodePayload("ext.any.v1", "SessionStart", start).json)).toEqual({
      participants: ["a"],
      ttlMs: "1000",
    });
  });

  it("shows JSON payloads of unknown types and nothing for bytes that do not decode", () => {
    const json = new TextEncoder().encode('{"note":"hi"}');
    expect(decodePayload("ext.notes.v1", "Note", json)).toEqual({
      json: '{"note":"hi"}',
      typeName: "",
    });
    expect(decodePayload("ext.notes.v1", "Note", new Uint8Array([0xff, 0x00]))).toEqual({
      json: "",
      typeName: "",
    });
    // A truncated varint does not decode as a VotePayload.
    expect(decodePayload("macp.mode.decision.v1", "Vote", new Uint8Array([0x0a, 0xff]))).toEqual({
      json: "",
      typeName: "",
    });
  });

  it("encodes protobuf JSON with the type's schema, and refuses JSON that does not fit", () => {
    const bytes = encodePayload(
      "macp.mode.decision.v1",
      "Vote",
      '{"proposalId":"p1","vote":"REJECT"}',
    );
    expect(decodePayload("macp.mode.decision.v1", "Vote", bytes).json).toBe(
      '{"proposalId":"p1","vote":"REJECT"}',
    );
    expect(() => encodePayload("macp.mode.decision.v1", "Vote", '{"nope":1}')).toThrow();
    expect(new TextDecoder().decode(encodePayload("ext.notes.v1", "Note", '{"a":1}'))).toBe(
      '{"a":1}',
    );
  });
});
