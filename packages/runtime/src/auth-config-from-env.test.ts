import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createAuthenticator } from "@macp/auth";
import { createDevIdentity, createIdentity } from "@macp/core";
import { base64url, SignJWT } from "jose";
import { afterAll, describe, expect, it } from "vitest";
import { type AuthEnvConfig, authConfigFromEnv } from "./auth-config-from-env.js";

const directory = mkdtempSync(join(tmpdir(), "macp-auth-env-"));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

function fileWith(name: string, text: string): string {
  const path = join(directory, name);
  writeFileSync(path, text);
  return path;
}

const TOKENS = JSON.stringify({ tokens: [{ token: "alice-token", sender: "alice" }] });
const SECRET = new TextEncoder().encode("a-shared-secret-of-thirty-two-by");
const JWKS = JSON.stringify({ keys: [{ kty: "oct", k: base64url.encode(SECRET) }] });

function errorsOf(env: Record<string, string | undefined>) {
  const result = authConfigFromEnv(env);
  if (result.ok) throw new Error("expected the configuration to be refused");
  return result.errors;
}

function configOf(env: Record<string, string | undefined>): AuthEnvConfig {
  const result = authConfigFromEnv(env);
  if (!result.ok) throw new Error(result.errors.map((error) => error.message).join("\n"));
  return result.value;
}

describe("authConfigFromEnv refuses", () => {
  it("to run without authentication unless MACP_ALLOW_INSECURE is exactly 1", () => {
    for (const insecure of [undefined, "", "0", "true", "yes", " 1"]) {
      const errors = errorsOf({ MACP_ALLOW_INSECURE: insecure });
      expect(errors).toHaveLength(1);
      expect(errors[0]?.variable).toBe("MACP_ALLOW_INSECURE");
      expect(errors[0]?.message).toMatch(/^MACP_ALLOW_INSECURE: no authentication configured/);
      expect(errors[0]?.message).toMatch(/MACP_ALLOW_INSECURE=1/);
    }
  });

  it("configurations that configure no resolver, just like an empty one", () => {
    expect(errorsOf({ MACP_AUTH_TOKENS_JSON: "[]" })[0]?.variable).toBe("MACP_ALLOW_INSECURE");
    expect(errorsOf({ MACP_AUTH_TOKENS_JSON: '{"tokens":[]}' })[0]?.variable).toBe(
      "MACP_ALLOW_INSECURE",
    );
    expect(errorsOf({ MACP_AUTH_ISSUER: "https://issuer.test" })[0]?.variable).toBe(
      "MACP_ALLOW_INSECURE",
    );
  });

  it("invalid static token JSON, naming the variable", () => {
    expect(errorsOf({ MACP_AUTH_TOKENS_JSON: "{not json" })).toEqual([
      {
        variable: "MACP_AUTH_TOKENS_JSON",
        message: expect.stringMatching(/^MACP_AUTH_TOKENS_JSON: invalid JSON/),
      },
    ]);
    expect(errorsOf({ MACP_AUTH_TOKENS_JSON: "" })[0]?.variable).toBe("MACP_AUTH_TOKENS_JSON");
    expect(errorsOf({ MACP_AUTH_TOKENS_JSON: '[{"token":"t"}]' })[0]?.message).toBe(
      'MACP_AUTH_TOKENS_JSON: tokens[0] is missing "sender"',
    );
  });

  it("an unreadable or invalid tokens file", () => {
    const missing = join(directory, "no-such-file.json");
    expect(errorsOf({ MACP_AUTH_TOKENS_FILE: missing })[0]?.message).toMatch(
      /^MACP_AUTH_TOKENS_FILE: cannot read ".*no-such-file\.json"/,
    );
    expect(errorsOf({ MACP_AUTH_TOKENS_FILE: directory })[0]?.variable).toBe(
      "MACP_AUTH_TOKENS_FILE",
    );
    const invalid = fileWith("invalid.json", "tokens: []");
    expect(errorsOf({ MACP_AUTH_TOKENS_FILE: invalid })[0]?.message).toMatch(
      /^MACP_AUTH_TOKENS_FILE: invalid JSON/,
    );
  });

  it("an inline JWKS that does not parse or holds no usable key (the reference only logs)", () => {
    const base = { MACP_AUTH_ISSUER: "https://issuer.test", MACP_ALLOW_INSECURE: "1" };
    expect(errorsOf({ ...base, MACP_AUTH_JWKS_JSON: "{" })[0]?.message).toMatch(
      /^MACP_AUTH_JWKS_JSON: invalid JSON/,
    );
    expect(errorsOf({ ...base, MACP_AUTH_JWKS_JSON: '{"keys": []}' })[0]?.message).toMatch(
      /^MACP_AUTH_JWKS_JSON: the JWKS holds no usable/,
    );
    expect(errorsOf({ ...base, MACP_AUTH_JWKS_JSON: "[]" })[0]?.message).toMatch(
      /^MACP_AUTH_JWKS_JSON: a JWKS must be a JSON object with a "keys" array/,
    );
  });

  it("a JWKS URL that is not an http(s) URL", () => {
    const base = { MACP_AUTH_ISSUER: "https://issuer.test" };
    expect(errorsOf({ ...base, MACP_AUTH_JWKS_URL: "keys.example/jwks" })[0]?.message).toMatch(
      /^MACP_AUTH_JWKS_URL: not a URL/,
    );
    expect(errorsOf({ ...base, MACP_AUTH_JWKS_URL: "file:///etc/jwks.json" })[0]?.message).toMatch(
      /^MACP_AUTH_JWKS_URL: expected an http: or https: URL/,
    );
  });

  it("unknown algorithms and none in MACP_AUTH_JWT_ALGS (the reference skips them)", () => {
    const base = { MACP_AUTH_ISSUER: "https://issuer.test", MACP_AUTH_JWKS_JSON: JWKS };
    expect(errorsOf({ ...base, MACP_AUTH_JWT_ALGS: "RS256,PS256" })).toEqual([
      {
        variable: "MACP_AUTH_JWT_ALGS",
        message: 'MACP_AUTH_JWT_ALGS: "PS256" is not supported (supported: RS256, ES256, HS256)',
      },
    ]);
    expect(errorsOf({ ...base, MACP_AUTH_JWT_ALGS: "none" })[0]?.message).toMatch(
      /^MACP_AUTH_JWT_ALGS: "none" is refused: unsigned tokens are never accepted/,
    );
  });

  it("an empty issuer or audience", () => {
    const base = { MACP_AUTH_JWKS_JSON: JWKS };
    expect(errorsOf({ ...base, MACP_AUTH_ISSUER: "" })[0]?.message).toBe(
      "MACP_AUTH_ISSUER: must not be empty",
    );
    expect(
      errorsOf({ ...base, MACP_AUTH_ISSUER: "https://issuer.test", MACP_AUTH_AUDIENCE: "" })[0]
        ?.message,
    ).toBe("MACP_AUTH_AUDIENCE: must not be empty");
  });

  it("with every problem at once, not only the first", () => {
    const errors = errorsOf({
      MACP_AUTH_TOKENS_JSON: "nope",
      MACP_AUTH_ISSUER: "https://issuer.test",
      MACP_AUTH_JWKS_URL: "nope",
      MACP_AUTH_JWT_ALGS: "HS512",
    });
    expect(errors.map((error) => error.variable)).toEqual([
      "MACP_AUTH_TOKENS_JSON",
      "MACP_AUTH_JWT_ALGS",
      "MACP_AUTH_JWKS_URL",
    ]);
  });
});

describe("authConfigFromEnv", () => {
  it("turns on dev mode with MACP_ALLOW_INSECURE=1 and nothing else", async () => {
    const config = configOf({ MACP_ALLOW_INSECURE: "1" });
    expect(config).toMatchObject({ devMode: true, allowInsecure: true, resolvers: [] });
    expect(config.warnings.join("\n")).toMatch(/dev mode/);
    const authenticator = createAuthenticator(config.options);
    expect(await authenticator.authenticate({ authorization: "Bearer agent://a" })).toEqual(
      createDevIdentity("agent://a"),
    );
  });

  it("keeps dev mode off when a resolver is configured, even with MACP_ALLOW_INSECURE=1", () => {
    const config = configOf({ MACP_ALLOW_INSECURE: "1", MACP_AUTH_TOKENS_JSON: TOKENS });
    expect(config).toMatchObject({
      devMode: false,
      allowInsecure: true,
      resolvers: ["static_bearer"],
    });
    expect(config.options.devMode).toBe(false);
  });

  it("reads static tokens from MACP_AUTH_TOKENS_FILE", async () => {
    const path = fileWith("tokens.json", TOKENS);
    const config = configOf({ MACP_AUTH_TOKENS_FILE: path });
    expect(config.resolvers).toEqual(["static_bearer"]);
    const authenticator = createAuthenticator(config.options);
    expect(await authenticator.authenticate({ "x-macp-token": "alice-token" })).toEqual(
      createIdentity({ sender: "alice" }),
    );
  });

  it("prefers MACP_AUTH_TOKENS_JSON over MACP_AUTH_TOKENS_FILE, which is then not read", () => {
    const config = configOf({
      MACP_AUTH_TOKENS_JSON: TOKENS,
      MACP_AUTH_TOKENS_FILE: join(directory, "never-read.json"),
    });
    expect(config.resolvers).toEqual(["static_bearer"]);
    expect(config.warnings).toContain(
      "MACP_AUTH_TOKENS_FILE is ignored because MACP_AUTH_TOKENS_JSON is set",
    );
  });

  it("configures JWT with the reference defaults", () => {
    const config = configOf({ MACP_AUTH_ISSUER: "https://issuer.test", MACP_AUTH_JWKS_JSON: JWKS });
    expect(config.resolvers).toEqual(["jwt_bearer"]);
    expect(config.options.jwt).toEqual({
      issuer: "https://issuer.test",
      audience: "macp-runtime",
      algorithms: ["RS256", "ES256"],
      jwks: { inline: JSON.parse(JWKS) },
    });
  });

  it("puts the JWT resolver before the static one", () => {
    const config = configOf({
      MACP_AUTH_ISSUER: "https://issuer.test",
      MACP_AUTH_JWKS_JSON: JWKS,
      MACP_AUTH_TOKENS_JSON: TOKENS,
    });
    expect(config.resolvers).toEqual(["jwt_bearer", "static_bearer"]);
  });

  it("parses MACP_AUTH_JWT_ALGS trimmed and case-insensitively, falling back when empty", () => {
    const base = { MACP_AUTH_ISSUER: "https://issuer.test", MACP_AUTH_JWKS_JSON: JWKS };
    expect(
      configOf({ ...base, MACP_AUTH_JWT_ALGS: " hs256 , Rs256,," }).options.jwt?.algorithms,
    ).toEqual(["HS256", "RS256"]);
    const empty = configOf({ ...base, MACP_AUTH_JWT_ALGS: " , " });
    expect(empty.options.jwt?.algorithms).toEqual(["RS256", "ES256"]);
    expect(empty.warnings.join("\n")).toMatch(/MACP_AUTH_JWT_ALGS names no algorithm/);
  });

  it("reads the JWKS URL and its TTL, falling back to 300 s for a TTL that does not parse", () => {
    const base = {
      MACP_AUTH_ISSUER: "https://issuer.test",
      MACP_AUTH_JWKS_URL: "https://keys.example/jwks.json",
      MACP_AUTH_AUDIENCE: "my-runtime",
    };
    expect(configOf(base).options.jwt).toEqual({
      issuer: "https://issuer.test",
      audience: "my-runtime",
      algorithms: ["RS256", "ES256"],
      jwks: { url: "https://keys.example/jwks.json", ttlSeconds: 300 },
    });
    expect(configOf({ ...base, MACP_AUTH_JWKS_TTL_SECS: "60" }).options.jwt?.jwks).toEqual({
      url: "https://keys.example/jwks.json",
      ttlSeconds: 60,
    });
    for (const junk of ["-5", "1.5", "five", ""]) {
      const config = configOf({ ...base, MACP_AUTH_JWKS_TTL_SECS: junk });
      expect(config.options.jwt?.jwks).toMatchObject({ ttlSeconds: 300 });
      expect(config.warnings.join("\n")).toMatch(/MACP_AUTH_JWKS_TTL_SECS/);
    }
  });

  it("prefers MACP_AUTH_JWKS_JSON over MACP_AUTH_JWKS_URL", () => {
    const config = configOf({
      MACP_AUTH_ISSUER: "https://issuer.test",
      MACP_AUTH_JWKS_JSON: JWKS,
      MACP_AUTH_JWKS_URL: "https://keys.example/jwks.json",
    });
    expect(config.options.jwt?.jwks).toEqual({ inline: JSON.parse(JWKS) });
    expect(config.warnings.join("\n")).toMatch(/MACP_AUTH_JWKS_URL is ignored/);
  });

  it("warns about half-configured JWT settings instead of silently ignoring them", () => {
    const issuerOnly = configOf({
      MACP_AUTH_ISSUER: "https://issuer.test",
      MACP_AUTH_TOKENS_JSON: TOKENS,
    });
    expect(issuerOnly.resolvers).toEqual(["static_bearer"]);
    expect(issuerOnly.warnings.join("\n")).toMatch(/no JWT resolver is configured/);
    const noIssuer = configOf({ MACP_AUTH_JWKS_JSON: JWKS, MACP_AUTH_TOKENS_JSON: TOKENS });
    expect(noIssuer.resolvers).toEqual(["static_bearer"]);
    expect(noIssuer.warnings.join("\n")).toMatch(
      /MACP_AUTH_JWKS_JSON ignored because MACP_AUTH_ISSUER is not set/,
    );
    const plainHttp = configOf({
      MACP_AUTH_ISSUER: "https://issuer.test",
      MACP_AUTH_JWKS_URL: "http://keys.example/jwks.json",
    });
    expect(plainHttp.warnings.join("\n")).toMatch(/plain http/);
  });

  it("yields options that authenticate the reference JWT test setup (HS256, inline oct key)", async () => {
    const config = configOf({
      MACP_AUTH_ISSUER: "https://issuer.test",
      MACP_AUTH_JWKS_JSON: JWKS,
      MACP_AUTH_JWT_ALGS: "HS256",
      MACP_ALLOW_INSECURE: "1",
    });
    const authenticator = createAuthenticator(config.options);
    const jwt = await new SignJWT({ macp_scopes: { is_observer: true } })
      .setProtectedHeader({ alg: "HS256" })
      .setIssuer("https://issuer.test")
      .setAudience("macp-runtime")
      .setSubject("agent://jwt-alice")
      .setExpirationTime("5m")
      .sign(SECRET);
    expect(await authenticator.authenticate({ authorization: `Bearer ${jwt}` })).toEqual(
      createIdentity({ sender: "agent://jwt-alice", isObserver: true }),
    );
  });
});
