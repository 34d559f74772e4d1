import { type CryptoKey, importJWK, type JWK } from "jose";
import { errorMessage, isJsonObject } from "./json-checks.js";
import { type ParseResult, parsed, parseError } from "./parse-result.js";

/** The JWS algorithms the JWT resolver knows. `none` is never among them. */
export type JwtAlgorithm = "RS256" | "ES256" | "HS256";

export const JWT_ALGORITHMS: readonly JwtAlgorithm[] = ["RS256", "ES256", "HS256"];

/** A JSON Web Key Set (RFC 7517 §5) as published by an identity provider. */
export interface JsonWebKeySet {
  readonly keys: readonly JWK[];
}

/** A key the resolver may try on a token, imported on first use. */
export interface VerificationKey {
  readonly kid: string | undefined;
  /** Resolves to `undefined` when the platform refuses the key material. */
  load(): Promise<CryptoKey | Uint8Array | undefined>;
}

/** The usable keys of one JWKS document. */
export interface VerificationKeys {
  /**
   * The keys to try on a token. When the token names a `kid` that the set
   * holds, only keys with that `kid` are tried; otherwise every key of the
   * algorithm's type is, as in the reference runtime.
   */
  candidates(algorithm: JwtAlgorithm, kid: string | undefined): readonly VerificationKey[];
}

/** Each key type verifies exactly one of the supported algorithms. */
const ALGORITHM_OF_KEY_TYPE: Readonly<Record<string, JwtAlgorithm>> = {
  RSA: "RS256",
  EC: "ES256",
  oct: "HS256",
};

interface UsableKey extends VerificationKey {
  readonly algorithm: JwtAlgorithm;
}

/**
 * Reads a JWKS document, keeping the keys that can verify RS256, ES256 or
 * HS256 tokens and skipping the rest. A document with no usable key is an
 * error, because a resolver with nothing to verify against would refuse every
 * token while looking configured.
 *
 * Keys are skipped when `use` is not `sig`, when `alg` names another
 * algorithm than the one the key type implies, or when an EC key is not on
 * P-256; the reference ignores those members, but honouring them keeps a key
 * published for one purpose from verifying another.
 */
/** Checks a JWKS document the way the JWT resolver will read it: at least one usable key. */
export function validateJwks(document: unknown): ParseResult<JsonWebKeySet> {
  const keys = parseJwks(document);
  return keys.ok ? parsed(document as JsonWebKeySet) : keys;
}

export function parseJwks(document: unknown): ParseResult<VerificationKeys> {
  if (!isJsonObject(document) || !Array.isArray(document.keys)) {
    return parseError('a JWKS must be a JSON object with a "keys" array');
  }
  const usable: UsableKey[] = [];
  for (const jwk of document.keys as unknown[]) {
    const key = usableKey(jwk);
    if (key !== undefined) usable.push(key);
  }
  if (usable.length === 0) {
    return parseError("the JWKS holds no usable RSA, EC (P-256) or oct signing key");
  }
  return parsed({
    candidates(algorithm, kid) {
      const named = kid === undefined ? [] : usable.filter((key) => key.kid === kid);
      const pool = named.length > 0 ? named : usable;
      return pool.filter((key) => key.algorithm === algorithm);
    },
  });
}

function usableKey(jwk: unknown): UsableKey | undefined {
  if (!isJsonObject(jwk) || typeof jwk.kty !== "string") return undefined;
  const algorithm = ALGORITHM_OF_KEY_TYPE[jwk.kty];
  if (algorithm === undefined) return undefined;
  if (jwk.use !== undefined && jwk.use !== "sig") return undefined;
  if (jwk.alg !== undefined && jwk.alg !== algorithm) return undefined;
  const kid = typeof jwk.kid === "string" ? jwk.kid : undefined;

  if (jwk.kty === "oct") {
    const secret = typeof jwk.k === "string" ? decodeSecret(jwk.k) : undefined;
    if (secret === undefined || secret.length === 0) return undefined;
    return { kid, algorithm, load: async () => secret };
  }

  // Only the public members go to the importer: a JWKS that wrongly carries
  // private parameters must still give a verification key.
  let publicJwk: JWK;
  if (jwk.kty === "RSA") {
    if (typeof jwk.n !== "string" || typeof jwk.e !== "string") return undefined;
    publicJwk = { kty: "RSA", n: jwk.n, e: jwk.e };
  } else {
    const crv = jwk.crv ?? "P-256";
    if (crv !== "P-256" || typeof jwk.x !== "string" || typeof jwk.y !== "string") {
      return undefined;
    }
    publicJwk = { kty: "EC", crv, x: jwk.x, y: jwk.y };
  }
  let imported: Promise<CryptoKey | undefined> | undefined;
  return {
    kid,
    algorithm,
    load() {
      imported ??= importJWK(publicJwk, algorithm).then(
        (key) => (key instanceof Uint8Array ? undefined : key),
        () => undefined,
      );
      return imported;
    },
  };
}

const BASE64_EITHER_ALPHABET = /^[A-Za-z0-9+/_-]*={0,2}$/;

/**
 * The bytes of an `oct` key's `k`. RFC 7517 says base64url; standard base64
 * (what the reference runtime decodes) is accepted as well, since the two
 * alphabets never disagree about a character's value.
 */
function decodeSecret(k: string): Uint8Array | undefined {
  const unpadded = k.replace(/=+$/, "");
  if (!BASE64_EITHER_ALPHABET.test(k) || unpadded.length % 4 === 1) return undefined;
  const standard = unpadded.replaceAll("-", "+").replaceAll("_", "/");
  return new Uint8Array(Buffer.from(standard, "base64"));
}

/** Where the JWT resolver gets its keys from. */
export interface KeySource {
  keys(): Promise<VerificationKeys>;
  close(): void;
}

export function inlineKeySource(keys: VerificationKeys): KeySource {
  return {
    keys: async () => keys,
    close() {},
  };
}

export interface RemoteKeySourceOptions {
  readonly url: URL;
  readonly ttlMs: number;
  readonly staleGraceMs: number;
  readonly timeoutMs: number;
  readonly now: () => number;
}

/**
 * A JWKS endpoint, fetched lazily on the first JWT and again only once the
 * cached copy is older than the TTL (an unknown `kid` does not force a
 * refresh, so a flood of made-up kids cannot hammer the identity provider).
 * Concurrent callers share one fetch. If a refresh fails, the old keys keep
 * working until TTL + grace has passed since they were fetched, so a short
 * outage of the identity provider does not lock every agent out.
 */
export function remoteKeySource(options: RemoteKeySourceOptions): KeySource {
  const { url, ttlMs, staleGraceMs, timeoutMs, now } = options;
  const closing = new AbortController();
  let cached: { readonly keys: VerificationKeys; readonly fetchedAt: number } | undefined;
  let refreshing: Promise<VerificationKeys> | undefined;

  async function fetchKeys(): Promise<VerificationKeys> {
    const signal = AbortSignal.any([closing.signal, AbortSignal.timeout(timeoutMs)]);
    const response = await fetch(url, { signal, headers: { accept: "application/json" } });
    if (!response.ok) {
      await response.body?.cancel();
      throw new Error(`HTTP ${response.status}`);
    }
    let document: unknown;
    try {
      document = await response.json();
    } catch (error) {
      throw new Error(`response is not JSON: ${errorMessage(error)}`);
    }
    const keys = parseJwks(document);
    if (!keys.ok) throw new Error(keys.error);
    return keys.value;
  }

  async function refresh(): Promise<VerificationKeys> {
    try {
      const keys = await fetchKeys();
      cached = { keys, fetchedAt: now() };
      return keys;
    } catch (error) {
      if (closing.signal.aborted) throw new Error("the authenticator is closed");
      if (cached !== undefined && now() - cached.fetchedAt < ttlMs + staleGraceMs) {
        return cached.keys;
      }
      throw new Error(`cannot fetch the JWKS from ${url.href}: ${errorMessage(error)}`);
    }
  }

  return {
    keys() {
      if (closing.signal.aborted) return Promise.reject(new Error("the authenticator is closed"));
      if (cached !== undefined && now() - cached.fetchedAt < ttlMs) {
        return Promise.resolve(cached.keys);
      }
      refreshing ??= refresh().finally(() => {
        refreshing = undefined;
      });
      return refreshing;
    },
    close() {
      closing.abort();
    },
  };
}
