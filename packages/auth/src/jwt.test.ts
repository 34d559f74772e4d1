import { generateKeyPairSync, randomBytes } from "node:crypto";
import { createIdentity, type Identity, isAuthenticated } from "@macp/core";
import { base64url, type CryptoKey, exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { type Authenticator, createAuthenticator, type JwtAuthOptions } from "./index.js";

const ISSUER = "https://issuer.test";
const START = Date.parse("2030-01-01T00:00:00Z");
const nowSeconds = () => Math.floor(START / 1000);

interface SigningKey {
  readonly alg: "RS256" | "ES256" | "HS256";
  readonly key: CryptoKey | Uint8Array;
  readonly kid?: string;
}

let rsa: SigningKey & { readonly jwk: JWK };
let ec: SigningKey & { readonly jwk: JWK };
let otherRsa: SigningKey & { readonly jwk: JWK };

async function keyPair(alg: "RS256" | "ES256", kid: string) {
  const { privateKey, publicKey } = await generateKeyPair(alg);
  return { alg, key: privateKey, kid, jwk: { ...(await exportJWK(publicKey)), kid } };
}

beforeAll(async () => {
  rsa = await keyPair("RS256", "rsa-1");
  ec = await keyPair("ES256", "ec-1");
  otherRsa = await keyPair("RS256", "rsa-2");
});

function token(
  signer: SigningKey,
  claims: Record<string, unknown> = {},
  header: Record<string, unknown> = {},
): Promise<string> {
  const body = { iss: ISSUER, aud: "macp-runtime", sub: "agent://alice", exp: nowSeconds() + 300 };
  return new SignJWT({ ...body, ...claims })
    .setProtectedHeader({ alg: signer.alg, ...(signer.kid ? { kid: signer.kid } : {}), ...header })
    .sign(signer.key);
}

function authenticatorWith(
  jwt: Partial<JwtAuthOptions> = {},
  clock = { now: () => START },
): Authenticator {
  return createAuthenticator({
    jwt: { issuer: ISSUER, jwks: { inline: { keys: [rsa.jwk, ec.jwk] } }, ...jwt },
    clock,
  });
}

async function callerFor(authenticator: Authenticator, jwt: string) {
  return authenticator.authenticate({ authorization: `Bearer ${jwt}` });
}

async function reasonFor(authenticator: Authenticator, jwt: string): Promise<string> {
  const caller = await callerFor(authenticator, jwt);
  if (isAuthenticated(caller)) throw new Error(`unexpectedly authenticated as ${caller.sender}`);
  return caller.unauthenticated;
}

async function identityFor(authenticator: Authenticator, jwt: string): Promise<Identity> {
  const caller = await callerFor(authenticator, jwt);
  if (!isAuthenticated(caller)) throw new Error(caller.unauthenticated);
  return caller;
}

/** An unsigned token, built by hand because no library will sign one. */
function unsignedToken(alg: string, claims: Record<string, unknown> = {}): string {
  const encode = (value: unknown) => base64url.encode(JSON.stringify(value));
  const body = {
    iss: ISSUER,
    aud: "macp-runtime",
    sub: "agent://mallory",
    exp: nowSeconds() + 300,
  };
  return `${encode({ alg, typ: "JWT" })}.${encode({ ...body, ...claims })}.`;
}

describe("JWT resolver refuses", () => {
  it("an expired token, beyond the 60 s leeway", async () => {
    const jwt = await token(rsa, { exp: nowSeconds() - 600 });
    expect(await reasonFor(authenticatorWith(), jwt)).toBe("jwt_bearer: token expired");
    const justPastLeeway = await token(rsa, { exp: nowSeconds() - 61 });
    expect(await reasonFor(authenticatorWith(), justPastLeeway)).toBe("jwt_bearer: token expired");
  });

  it("a token once the injected clock passes exp + 60 s", async () => {
    let now = START;
    const authenticator = authenticatorWith({}, { now: () => now });
    const jwt = await token(rsa, { exp: nowSeconds() + 10 });
    expect(await identityFor(authenticator, jwt)).toMatchObject({ sender: "agent://alice" });
    now = START + 69_000;
    expect(await identityFor(authenticator, jwt)).toMatchObject({ sender: "agent://alice" });
    now = START + 71_000;
    expect(await reasonFor(authenticator, jwt)).toBe("jwt_bearer: token expired");
  });

  it("a token whose nbf is more than 60 s ahead (the reference ignores nbf)", async () => {
    const authenticator = authenticatorWith();
    expect(await reasonFor(authenticator, await token(rsa, { nbf: nowSeconds() + 120 }))).toBe(
      "jwt_bearer: token not yet valid (nbf)",
    );
    expect(
      await identityFor(authenticator, await token(rsa, { nbf: nowSeconds() + 30 })),
    ).toMatchObject({ sender: "agent://alice" });
  });

  it("a wrong audience, in a string or an array", async () => {
    const authenticator = authenticatorWith();
    expect(await reasonFor(authenticator, await token(rsa, { aud: "other-service" }))).toBe(
      "jwt_bearer: invalid audience",
    );
    expect(await reasonFor(authenticator, await token(rsa, { aud: ["a", "b"] }))).toBe(
      "jwt_bearer: invalid audience",
    );
  });

  it("a wrong issuer", async () => {
    const jwt = await token(rsa, { iss: "https://attacker.example" });
    expect(await reasonFor(authenticatorWith(), jwt)).toBe("jwt_bearer: invalid issuer");
  });

  it("a token without iss or aud (which the reference would accept)", async () => {
    const authenticator = authenticatorWith();
    const signedWithout = async (claim: string) => {
      const claims: Record<string, unknown> = {
        iss: ISSUER,
        aud: "macp-runtime",
        sub: "agent://alice",
        exp: nowSeconds() + 300,
      };
      delete claims[claim];
      return new SignJWT(claims).setProtectedHeader({ alg: "RS256", kid: "rsa-1" }).sign(rsa.key);
    };
    expect(await reasonFor(authenticator, await signedWithout("iss"))).toBe(
      'jwt_bearer: the token has no "iss" claim',
    );
    expect(await reasonFor(authenticator, await signedWithout("aud"))).toBe(
      'jwt_bearer: the token has no "aud" claim',
    );
    expect(await reasonFor(authenticator, await signedWithout("sub"))).toBe(
      'jwt_bearer: the token has no "sub" claim',
    );
    expect(await reasonFor(authenticator, await signedWithout("exp"))).toBe(
      'jwt_bearer: the token has no "exp" claim',
    );
  });

  it("a sub that is not a non-empty string", async () => {
    const authenticator = authenticatorWith();
    expect(await reasonFor(authenticator, await token(rsa, { sub: "" }))).toBe(
      'jwt_bearer: "sub" must be a non-empty string',
    );
    expect(await reasonFor(authenticator, await token(rsa, { sub: 42 }))).toMatch(/^jwt_bearer:/);
  });

  it("alg none, whatever the allow-list and however it is spelt", async () => {
    const authenticator = authenticatorWith({ algorithms: ["RS256", "ES256", "HS256"] });
    for (const alg of ["none", "None", "NONE"]) {
      expect(await reasonFor(authenticator, unsignedToken(alg))).toBe(
        "jwt_bearer: unsigned tokens (alg none) are refused",
      );
    }
  });

  it("an algorithm outside the allow-list", async () => {
    const rsaOnly = authenticatorWith({ algorithms: ["RS256"] });
    expect(await reasonFor(rsaOnly, await token(ec))).toBe(
      "jwt_bearer: algorithm ES256 is not allowed (allowed: RS256)",
    );
    expect(await reasonFor(rsaOnly, unsignedToken("PS256"))).toMatch(
      /algorithm PS256 is not allowed/,
    );
  });

  it("a forged signature", async () => {
    const forged = await token({ ...otherRsa, kid: "rsa-1" });
    expect(await reasonFor(authenticatorWith(), forged)).toBe("jwt_bearer: invalid signature");
    const [header, payload] = (await token(rsa)).split(".");
    const tampered = `${header}.${payload}.${base64url.encode(randomBytes(256))}`;
    expect(await reasonFor(authenticatorWith(), tampered)).toBe("jwt_bearer: invalid signature");
  });

  it("a malformed token", async () => {
    const authenticator = authenticatorWith();
    expect(await reasonFor(authenticator, "abc.def")).toBe("jwt_bearer: malformed token header");
    const header = base64url.encode(JSON.stringify({ alg: "RS256" }));
    expect(await reasonFor(authenticator, `${header}.not-json.sig`)).toMatch(/^jwt_bearer: /);
  });

  it("a JWT in x-macp-token: the JWT resolver reads only Authorization", async () => {
    const caller = await authenticatorWith().authenticate({ "x-macp-token": await token(rsa) });
    expect(caller).toEqual({
      unauthenticated:
        "JWTs are accepted only as 'authorization: Bearer <jwt>', not in x-macp-token",
    });
  });

  it("an opaque token when only the JWT resolver is configured", async () => {
    const caller = await authenticatorWith().authenticate({
      authorization: "Bearer static-opaque-token-with-no-dots",
    });
    expect(isAuthenticated(caller)).toBe(false);
  });

  it("a token signed with no key of its type in the JWKS", async () => {
    const ecOnly = authenticatorWith({ jwks: { inline: { keys: [ec.jwk] } } });
    expect(await reasonFor(ecOnly, await token(rsa))).toBe(
      "jwt_bearer: no key in the JWKS can verify an RS256 token",
    );
  });
});

describe("HS256", () => {
  const secret = new Uint8Array(randomBytes(32));
  const hmac: SigningKey = { alg: "HS256", key: secret };
  const octKey: JWK = { kty: "oct", k: base64url.encode(secret) };

  it("is refused unless the allow-list names it", async () => {
    const authenticator = authenticatorWith({ jwks: { inline: { keys: [octKey] } } });
    expect(await reasonFor(authenticator, await token(hmac))).toBe(
      "jwt_bearer: algorithm HS256 is not allowed (allowed: RS256, ES256)",
    );
  });

  it("is accepted when allowed, with the secret from an oct key", async () => {
    const authenticator = authenticatorWith({
      algorithms: ["HS256"],
      jwks: { inline: { keys: [octKey] } },
    });
    expect(await identityFor(authenticator, await token(hmac))).toEqual(
      createIdentity({ sender: "agent://alice" }),
    );
  });

  it("accepts a standard-base64 k as well as base64url", async () => {
    const standard = Buffer.from(secret).toString("base64");
    const authenticator = authenticatorWith({
      algorithms: ["HS256"],
      jwks: { inline: { keys: [{ kty: "oct", k: standard }] } },
    });
    expect(await identityFor(authenticator, await token(hmac))).toMatchObject({
      sender: "agent://alice",
    });
  });

  it("refuses a token signed with another secret", async () => {
    const authenticator = authenticatorWith({
      algorithms: ["HS256"],
      jwks: { inline: { keys: [octKey] } },
    });
    const forged = await token({ alg: "HS256", key: new Uint8Array(randomBytes(32)) });
    expect(await reasonFor(authenticator, forged)).toBe("jwt_bearer: invalid signature");
  });

  it("cannot be used to turn a public RSA key into an HMAC secret", async () => {
    const authenticator = authenticatorWith({ algorithms: ["RS256", "HS256"] });
    const publicKeyBytes = new TextEncoder().encode(JSON.stringify(rsa.jwk));
    const confused = await token({ alg: "HS256", key: publicKeyBytes, kid: "rsa-1" });
    expect(await reasonFor(authenticator, confused)).toBe(
      "jwt_bearer: no key in the JWKS can verify an HS256 token",
    );
  });
});

describe("JWT resolver accepts", () => {
  it("RS256 and ES256 tokens, deriving the sender from sub", async () => {
    const authenticator = authenticatorWith();
    expect(authenticator.resolvers).toEqual(["jwt_bearer"]);
    expect(
      await identityFor(authenticator, await token(rsa, { sub: "agent://jwt-alice" })),
    ).toEqual(createIdentity({ sender: "agent://jwt-alice" }));
    expect(await identityFor(authenticator, await token(ec, { sub: "agent://jwt-bob" }))).toEqual(
      createIdentity({ sender: "agent://jwt-bob" }),
    );
  });

  it("an aud array that contains the audience, and a custom audience", async () => {
    expect(
      await identityFor(authenticatorWith(), await token(rsa, { aud: ["x", "macp-runtime"] })),
    ).toMatchObject({ sender: "agent://alice" });
    const custom = authenticatorWith({ audience: "my-runtime" });
    expect(await identityFor(custom, await token(rsa, { aud: "my-runtime" }))).toMatchObject({
      sender: "agent://alice",
    });
    expect(await reasonFor(custom, await token(rsa))).toBe("jwt_bearer: invalid audience");
  });

  it("a token that expired less than 60 s ago", async () => {
    const jwt = await token(rsa, { exp: nowSeconds() - 30 });
    expect(await identityFor(authenticatorWith(), jwt)).toMatchObject({ sender: "agent://alice" });
  });
});

describe("macp_scopes", () => {
  const identityWithScopes = async (scopes: unknown) =>
    identityFor(authenticatorWith(), await token(rsa, { macp_scopes: scopes }));

  it("defaults every capability when absent", async () => {
    expect(await identityFor(authenticatorWith(), await token(rsa))).toEqual({
      sender: "agent://alice",
      allowedModes: null,
      canStartSessions: true,
      maxOpenSessions: null,
      canManageModeRegistry: false,
      isObserver: false,
    });
    expect(await identityWithScopes({})).toEqual(createIdentity({ sender: "agent://alice" }));
  });

  it("maps every field", async () => {
    expect(
      await identityWithScopes({
        can_start_sessions: false,
        can_manage_mode_registry: true,
        is_observer: true,
        allowed_modes: ["macp.mode.decision.v1"],
        max_open_sessions: 2,
        some_future_scope: "ignored",
      }),
    ).toEqual({
      sender: "agent://alice",
      allowedModes: new Set(["macp.mode.decision.v1"]),
      canStartSessions: false,
      maxOpenSessions: 2,
      canManageModeRegistry: true,
      isObserver: true,
    });
  });

  it("reads allowed_modes: [] as an empty allow-set, unlike the static table", async () => {
    const identity = await identityWithScopes({ allowed_modes: [] });
    expect(identity.allowedModes).toEqual(new Set());
    expect(identity.allowedModes).not.toBeNull();
  });

  it("refuses scopes of the wrong shape", async () => {
    const authenticator = authenticatorWith();
    const refused = async (scopes: unknown) =>
      reasonFor(authenticator, await token(rsa, { macp_scopes: scopes }));
    expect(await refused("admin")).toBe('jwt_bearer: "macp_scopes" must be an object');
    expect(await refused({ is_observer: "yes" })).toBe(
      "jwt_bearer: macp_scopes.is_observer must be true or false",
    );
    expect(await refused({ allowed_modes: "macp.mode.decision.v1" })).toBe(
      "jwt_bearer: macp_scopes.allowed_modes must be an array of strings",
    );
    expect(await refused({ max_open_sessions: -2 })).toBe(
      "jwt_bearer: macp_scopes.max_open_sessions must be a non-negative integer or null",
    );
  });
});

describe("key selection by kid", () => {
  const bothRsa = () => authenticatorWith({ jwks: { inline: { keys: [rsa.jwk, otherRsa.jwk] } } });

  it("tries only the key the kid names", async () => {
    const misdirected = await token({ ...otherRsa, kid: "rsa-1" });
    expect(await reasonFor(bothRsa(), misdirected)).toBe("jwt_bearer: invalid signature");
  });

  it("finds the right key by kid", async () => {
    expect(await identityFor(bothRsa(), await token(otherRsa))).toMatchObject({
      sender: "agent://alice",
    });
    expect(await identityFor(bothRsa(), await token(rsa))).toMatchObject({
      sender: "agent://alice",
    });
  });

  it("tries every key when the token has no kid or an unknown one", async () => {
    const noKid = await token({ alg: "RS256", key: otherRsa.key });
    expect(await identityFor(bothRsa(), noKid)).toMatchObject({ sender: "agent://alice" });
    const unknownKid = await token({ ...otherRsa, kid: "rotated-away" });
    expect(await identityFor(bothRsa(), unknownKid)).toMatchObject({ sender: "agent://alice" });
  });
});

describe("keys jose refuses", () => {
  const weakRsa = () =>
    generateKeyPairSync("rsa", { modulusLength: 1024 }).publicKey.export({ format: "jwk" }) as JWK;

  it("are reported when no other key fits", async () => {
    const authenticator = authenticatorWith({ jwks: { inline: { keys: [weakRsa()] } } });
    const noKid = await token({ alg: "RS256", key: rsa.key });
    expect(await reasonFor(authenticator, noKid)).toMatch(
      /^jwt_bearer: unusable key in the JWKS: .*2048 bits/,
    );
  });

  it("do not stop the search for one that fits", async () => {
    const authenticator = authenticatorWith({ jwks: { inline: { keys: [weakRsa(), rsa.jwk] } } });
    const noKid = await token({ alg: "RS256", key: rsa.key });
    expect(await identityFor(authenticator, noKid)).toMatchObject({ sender: "agent://alice" });
  });
});

describe("JWT configuration", () => {
  it("refuses a JWKS without a usable key", () => {
    expect(() => authenticatorWith({ jwks: { inline: { keys: [] } } })).toThrow(/no usable/);
    expect(() =>
      authenticatorWith({ jwks: { inline: { keys: [{ kty: "OKP", crv: "Ed25519", x: "AA" }] } } }),
    ).toThrow(/no usable/);
    expect(() =>
      authenticatorWith({ jwks: { inline: { keys: [{ ...rsa.jwk, use: "enc" }] } } }),
    ).toThrow(/no usable/);
    expect(() =>
      authenticatorWith({ jwks: { inline: { keys: [{ ...rsa.jwk, alg: "PS256" }] } } }),
    ).toThrow(/no usable/);
  });

  it("refuses an empty issuer, an empty allow-list and unknown algorithms", () => {
    expect(() => authenticatorWith({ issuer: "" })).toThrow(/jwt\.issuer/);
    expect(() => authenticatorWith({ algorithms: [] })).toThrow(/must not be empty/);
    expect(() => authenticatorWith({ algorithms: ["none" as unknown as "RS256"] })).toThrow(
      /unsupported algorithm "none"/,
    );
  });

  it("refuses a JWKS URL that is not http(s)", () => {
    expect(() => authenticatorWith({ jwks: { url: "ftp://keys.example/jwks" } })).toThrow(
      /http: or https:/,
    );
    expect(() => authenticatorWith({ jwks: { url: "not a url" } })).toThrow(/not a URL/);
  });
});
