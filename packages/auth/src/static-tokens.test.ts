import { createIdentity } from "@macp/core";
import { describe, expect, it } from "vitest";
import { parseStaticTokens } from "./index.js";

function parseError(json: string): string {
  const result = parseStaticTokens(json);
  if (result.ok) throw new Error(`expected ${json} to be refused`);
  return result.error;
}

describe("parseStaticTokens refuses", () => {
  it.each([
    ["invalid JSON", "{tokens: []}", /invalid JSON/],
    ["a bare string", '"alice-token"', /expected an array of token entries or an object/],
    ["null", "null", /expected an array/],
    [
      "tokens that is not an array",
      '{"tokens": {"token": "a", "sender": "a"}}',
      /"tokens" must be an array/,
    ],
    ["an unknown top-level field", '{"tokens": [], "extra": 1}', /unknown field "extra"/],
    ["an entry that is not an object", '["alice-token"]', /tokens\[0\] must be an object/],
    ["a missing token", '[{"sender": "alice"}]', /tokens\[0\] is missing "token"/],
    ["a missing sender", '[{"token": "t1"}]', /tokens\[0\] is missing "sender"/],
    [
      "a non-string token",
      '[{"token": 42, "sender": "alice"}]',
      /tokens\[0\]\.token must be a string/,
    ],
    [
      "an empty sender",
      '[{"token": "t1", "sender": ""}]',
      /tokens\[0\]\.sender must be a non-empty string/,
    ],
    ["a non-string sender", '[{"token": "t1", "sender": 7}]', /sender must be a non-empty string/],
    ["an empty token", '[{"token": "", "sender": "a"}]', /token must not be empty/],
    ["a token with whitespace", '[{"token": "a b", "sender": "a"}]', /must not contain whitespace/],
    ["a dotted token", '[{"token": "a.b", "sender": "a"}]', /must not contain "\."/],
    [
      "a misspelt capability",
      '[{"token": "t1", "sender": "a", "can_start_session": false}]',
      /tokens\[0\] has unknown field "can_start_session"/,
    ],
    [
      "allowed_modes that is not a list of strings",
      '[{"token": "t1", "sender": "a", "allowed_modes": "macp.mode.decision.v1"}]',
      /allowed_modes must be an array of strings/,
    ],
    [
      "allowed_modes with a non-string",
      '[{"token": "t1", "sender": "a", "allowed_modes": [1]}]',
      /allowed_modes must be an array of strings/,
    ],
    [
      "can_start_sessions that is not a boolean",
      '[{"token": "t1", "sender": "a", "can_start_sessions": "false"}]',
      /can_start_sessions must be true or false/,
    ],
    [
      "can_manage_mode_registry that is not a boolean",
      '[{"token": "t1", "sender": "a", "can_manage_mode_registry": 1}]',
      /can_manage_mode_registry must be true or false/,
    ],
    [
      "is_observer that is not a boolean",
      '[{"token": "t1", "sender": "a", "is_observer": null}]',
      /is_observer must be true or false/,
    ],
    [
      "a negative max_open_sessions",
      '[{"token": "t1", "sender": "a", "max_open_sessions": -1}]',
      /max_open_sessions must be a non-negative integer or null/,
    ],
    [
      "a fractional max_open_sessions",
      '[{"token": "t1", "sender": "a", "max_open_sessions": 1.5}]',
      /max_open_sessions must be a non-negative integer/,
    ],
    [
      "a duplicate token",
      '[{"token": "t1", "sender": "a"}, {"token": "t1", "sender": "b"}]',
      /tokens\[1\]\.token duplicates an earlier entry/,
    ],
  ])("%s", (_, json, message) => {
    expect(parseError(json)).toMatch(message);
  });

  it("names the entry at fault", () => {
    expect(
      parseError('{"tokens": [{"token": "t1", "sender": "a"}, {"token": "t2", "sender": ""}]}'),
    ).toMatch(/^tokens\[1\]\.sender/);
  });
});

describe("parseStaticTokens accepts", () => {
  const alice = { token: "alice-token", sender: "alice" };

  it("a bare array and a {tokens} object alike", () => {
    const bare = parseStaticTokens(JSON.stringify([alice]));
    const wrapped = parseStaticTokens(JSON.stringify({ tokens: [alice] }));
    expect(bare).toEqual(wrapped);
    expect(bare).toEqual({
      ok: true,
      value: [{ token: "alice-token", identity: createIdentity({ sender: "alice" }) }],
    });
  });

  it("empty tables in both forms", () => {
    expect(parseStaticTokens("[]")).toEqual({ ok: true, value: [] });
    expect(parseStaticTokens('{"tokens": []}')).toEqual({ ok: true, value: [] });
  });

  it("the reference defaults for every capability", () => {
    const result = parseStaticTokens(JSON.stringify([alice]));
    if (!result.ok) throw new Error(result.error);
    expect(result.value[0]?.identity).toEqual({
      sender: "alice",
      allowedModes: null,
      canStartSessions: true,
      maxOpenSessions: null,
      canManageModeRegistry: false,
      isObserver: false,
    });
  });

  it("every capability flag set", () => {
    const result = parseStaticTokens(
      JSON.stringify({
        tokens: [
          {
            token: "ops-token",
            sender: "agent://ops",
            allowed_modes: ["macp.mode.decision.v1", "macp.mode.task.v1"],
            can_start_sessions: false,
            max_open_sessions: 3,
            can_manage_mode_registry: true,
            is_observer: true,
          },
        ],
      }),
    );
    if (!result.ok) throw new Error(result.error);
    expect(result.value[0]?.identity).toEqual({
      sender: "agent://ops",
      allowedModes: new Set(["macp.mode.decision.v1", "macp.mode.task.v1"]),
      canStartSessions: false,
      maxOpenSessions: 3,
      canManageModeRegistry: true,
      isObserver: true,
    });
  });

  it("an empty allowed_modes list as unrestricted, and null as absent", () => {
    const result = parseStaticTokens(
      JSON.stringify([
        { ...alice, allowed_modes: [] },
        { token: "bob-token", sender: "bob", allowed_modes: null, max_open_sessions: null },
        { token: "carol-token", sender: "carol", max_open_sessions: 0 },
      ]),
    );
    if (!result.ok) throw new Error(result.error);
    expect(result.value.map((entry) => entry.identity.allowedModes)).toEqual([null, null, null]);
    expect(result.value.map((entry) => entry.identity.maxOpenSessions)).toEqual([null, null, 0]);
  });

  it("the two tokens of the TypeScript SDK's README", () => {
    const result = parseStaticTokens(
      JSON.stringify({
        tokens: [
          { token: "alice-test-token", sender: "alice", can_start_sessions: true },
          { token: "bob-test-token", sender: "bob", can_start_sessions: false },
        ],
      }),
    );
    if (!result.ok) throw new Error(result.error);
    expect(result.value.map((entry) => entry.identity.canStartSessions)).toEqual([true, false]);
  });
});
