import { createDevIdentity, createIdentity, isAuthenticated } from "@macp/core";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import {
  type Authenticator,
  createAuthenticator,
  type HeadersInput,
  parseStaticTokens,
} from "./index.js";

const staticTokens = (() => {
  const result = parseStaticTokens(
    JSON.stringify({
      tokens: [
        { token: "alice-token", sender: "alice" },
        { token: "bob-token", sender: "bob", can_start_sessions: false },
      ],
    }),
  );
  if (!result.ok) throw new Error(result.error);
  return result.value;
})();

async function reasonFor(authenticator: Authenticator, headers: HeadersInput): Promise<string> {
  const caller = await authenticator.authenticate(headers);
  if (isAuthenticated(caller)) throw new Error(`unexpectedly authenticated as ${caller.sender}`);
  return caller.unauthenticated;
}

describe("credential extraction refuses", () => {
  const dev = createAuthenticator({ devMode: true });

  it("a request without credentials", async () => {
    expect(await reasonFor(dev, {})).toMatch(/^missing credentials/);
    expect(await reasonFor(dev, new Headers())).toMatch(/^missing credentials/);
    expect(await reasonFor(dev, { authorization: undefined })).toMatch(/^missing credentials/);
  });

  it("an Authorization header with another scheme and no x-macp-token", async () => {
    expect(await reasonFor(dev, { authorization: "Basic YWxpY2U6cHc=" })).toMatch(
      /unsupported authorization scheme/,
    );
  });

  it("a Bearer prefix in the wrong case", async () => {
    expect(await reasonFor(dev, { authorization: "bearer agent://alice" })).toMatch(
      /unsupported authorization scheme/,
    );
    expect(await reasonFor(dev, { authorization: "BEARER agent://alice" })).toMatch(
      /unsupported authorization scheme/,
    );
  });

  it("a Bearer header without a token or with extra spaces", async () => {
    expect(await reasonFor(dev, { authorization: "Bearer " })).toMatch(/malformed authorization/);
    expect(await reasonFor(dev, { authorization: "Bearer  agent://alice" })).toMatch(
      /malformed authorization/,
    );
    expect(await reasonFor(dev, { authorization: "Bearer a b" })).toMatch(
      /malformed authorization/,
    );
    // "Bearer" alone is another scheme, not an empty bearer token.
    expect(await reasonFor(dev, { authorization: "Bearer" })).toMatch(
      /unsupported authorization scheme/,
    );
  });

  it("an empty or whitespace-laden x-macp-token", async () => {
    expect(await reasonFor(dev, { "x-macp-token": "" })).toMatch(/^missing credentials/);
    expect(await reasonFor(dev, { "x-macp-token": "a b" })).toMatch(/malformed x-macp-token/);
  });
});

describe("dev mode", () => {
  it("is off unless asked for: with no resolver every credential is refused", async () => {
    const none = createAuthenticator({});
    expect(none.devMode).toBe(false);
    expect(none.resolvers).toEqual([]);
    expect(await reasonFor(none, { authorization: "Bearer agent://alice" })).toMatch(
      /no authentication configured/,
    );
  });

  it("cannot be combined with a resolver", () => {
    expect(() => createAuthenticator({ devMode: true, staticTokens })).toThrow(/devMode/);
  });

  it("accepts an empty token table, which configures no resolver", async () => {
    const dev = createAuthenticator({ devMode: true, staticTokens: [] });
    expect(await dev.authenticate({ authorization: "Bearer agent://a" })).toEqual(
      createDevIdentity("agent://a"),
    );
  });

  it("authenticates any bearer value as that sender with full privileges", async () => {
    const dev = createAuthenticator({ devMode: true });
    expect(dev.devMode).toBe(true);
    const caller = await dev.authenticate({ authorization: "Bearer agent://alice" });
    expect(caller).toEqual(createDevIdentity("agent://alice"));
    expect(caller).toMatchObject({
      allowedModes: null,
      canStartSessions: true,
      maxOpenSessions: null,
      canManageModeRegistry: true,
      isObserver: false,
    });
  });

  it("reads x-macp-token, and prefers Authorization when both are present", async () => {
    const dev = createAuthenticator({ devMode: true });
    expect(await dev.authenticate({ "x-macp-token": "agent://bob" })).toEqual(
      createDevIdentity("agent://bob"),
    );
    expect(
      await dev.authenticate({
        authorization: "Bearer agent://alice",
        "x-macp-token": "agent://bob",
      }),
    ).toEqual(createDevIdentity("agent://alice"));
    // Another scheme is not a bearer credential, so x-macp-token is used.
    expect(
      await dev.authenticate({
        authorization: "Basic Zm9vOmJhcg==",
        "x-macp-token": "agent://bob",
      }),
    ).toEqual(createDevIdentity("agent://bob"));
  });

  it("accepts a dotted value as a sender", async () => {
    const dev = createAuthenticator({ devMode: true });
    expect(await dev.authenticate({ authorization: "Bearer agent.alice" })).toEqual(
      createDevIdentity("agent.alice"),
    );
  });

  it("reads WHATWG Headers and plain records with any header case or repeated values", async () => {
    const dev = createAuthenticator({ devMode: true });
    const headers = new Headers({ Authorization: "Bearer agent://alice" });
    expect(await dev.authenticate(headers)).toEqual(createDevIdentity("agent://alice"));
    expect(await dev.authenticate({ Authorization: "Bearer agent://carol" })).toEqual(
      createDevIdentity("agent://carol"),
    );
    expect(await dev.authenticate({ "X-MACP-Token": ["agent://dave", "agent://eve"] })).toEqual(
      createDevIdentity("agent://dave"),
    );
  });
});

describe("static token resolver", () => {
  const authenticator = createAuthenticator({ staticTokens });

  it("refuses an unknown opaque token without trying anything else", async () => {
    expect(await reasonFor(authenticator, { authorization: "Bearer mallory-token" })).toBe(
      "static_bearer: unknown token",
    );
    // A prefix or extension of a real token is just as unknown.
    expect(await reasonFor(authenticator, { authorization: "Bearer alice-toke" })).toBe(
      "static_bearer: unknown token",
    );
    expect(await reasonFor(authenticator, { authorization: "Bearer alice-token2" })).toBe(
      "static_bearer: unknown token",
    );
  });

  it("declines a dotted token, which leaves it unauthenticated when no JWT resolver exists", async () => {
    expect(await reasonFor(authenticator, { authorization: "Bearer alice.token" })).toMatch(
      /looks like a JWT but no JWT issuer is configured/,
    );
  });

  it("resolves a known token from either header", async () => {
    expect(authenticator.resolvers).toEqual(["static_bearer"]);
    expect(await authenticator.authenticate({ authorization: "Bearer alice-token" })).toEqual(
      createIdentity({ sender: "alice" }),
    );
    expect(await authenticator.authenticate({ "x-macp-token": "bob-token" })).toEqual(
      createIdentity({ sender: "bob", canStartSessions: false }),
    );
  });

  it("refuses a table that could not work", () => {
    const alice = createIdentity({ sender: "alice" });
    expect(() =>
      createAuthenticator({
        staticTokens: [
          { token: "t", identity: alice },
          { token: "t", identity: alice },
        ],
      }),
    ).toThrow(/duplicates/);
    expect(() =>
      createAuthenticator({ staticTokens: [{ token: "a.b", identity: alice }] }),
    ).toThrow(/must not contain "\."/);
  });
});

describe("resolver chain", () => {
  let chain: Authenticator;
  let jwtFor: (sub: string) => Promise<string>;

  beforeAll(async () => {
    const { privateKey, publicKey } = await generateKeyPair("ES256");
    const jwk = { ...(await exportJWK(publicKey)), kid: "k1" };
    chain = createAuthenticator({
      jwt: { issuer: "https://issuer.test", jwks: { inline: { keys: [jwk] } } },
      staticTokens,
    });
    jwtFor = (sub) =>
      new SignJWT({})
        .setProtectedHeader({ alg: "ES256", kid: "k1" })
        .setIssuer("https://issuer.test")
        .setAudience("macp-runtime")
        .setSubject(sub)
        .setExpirationTime("5m")
        .sign(privateKey);
  });

  it("stops at a JWT the JWT resolver rejects", async () => {
    expect(await reasonFor(chain, { authorization: "Bearer not.a.jwt" })).toMatch(/^jwt_bearer:/);
  });

  it("stops at an opaque token the static resolver rejects", async () => {
    expect(await reasonFor(chain, { authorization: "Bearer nope" })).toBe(
      "static_bearer: unknown token",
    );
  });

  it("refuses a JWT sent as x-macp-token: both resolvers decline it", async () => {
    expect(await reasonFor(chain, { "x-macp-token": await jwtFor("agent://jwt") })).toMatch(
      /JWTs are accepted only as 'authorization: Bearer <jwt>'/,
    );
  });

  it("runs the JWT resolver first, then the static one", async () => {
    expect(chain.resolvers).toEqual(["jwt_bearer", "static_bearer"]);
    expect(
      await chain.authenticate({ authorization: `Bearer ${await jwtFor("agent://jwt")}` }),
    ).toEqual(createIdentity({ sender: "agent://jwt" }));
    expect(await chain.authenticate({ authorization: "Bearer alice-token" })).toEqual(
      createIdentity({ sender: "alice" }),
    );
  });

  it("refuses everything once closed", async () => {
    const closing = createAuthenticator({ staticTokens });
    closing.close();
    expect(await reasonFor(closing, { authorization: "Bearer alice-token" })).toMatch(/closed/);
  });
});
