import { type Caller, createDevIdentity, type Identity } from "@macp/core";
import { findCredential, type HeadersInput } from "./credentials.js";
import { errorMessage } from "./json-checks.js";
import {
  inlineKeySource,
  type JsonWebKeySet,
  JWT_ALGORITHMS,
  type JwtAlgorithm,
  type KeySource,
  parseJwks,
  remoteKeySource,
} from "./jwks.js";
import { createJwtResolver } from "./jwt-resolver.js";
import type { Credential, CredentialResolver, ResolverName, ResolverOutcome } from "./resolver.js";
import {
  createStaticTokenResolver,
  findStaticTableProblem,
  type StaticTokenEntry,
} from "./static-tokens.js";

/** The audience a JWT must name when none is configured (`MACP_AUTH_AUDIENCE`). */
export const DEFAULT_JWT_AUDIENCE = "macp-runtime";
/** The algorithms accepted when none are configured (`MACP_AUTH_JWT_ALGS`). */
export const DEFAULT_JWT_ALGORITHMS: readonly JwtAlgorithm[] = ["RS256", "ES256"];
/** How long a fetched JWKS is used before it is fetched again (`MACP_AUTH_JWKS_TTL_SECS`). */
export const DEFAULT_JWKS_TTL_SECONDS = 300;
/** How long past its TTL a JWKS stays usable while the endpoint cannot be reached. */
export const DEFAULT_JWKS_STALE_GRACE_SECONDS = 3600;
/** Time limit of one JWKS request. */
export const DEFAULT_JWKS_TIMEOUT_MS = 5000;

/** A JWKS given in full, e.g. from `MACP_AUTH_JWKS_JSON`. It never expires. */
export interface InlineJwks {
  readonly inline: JsonWebKeySet;
}

/** A JWKS endpoint, e.g. `MACP_AUTH_JWKS_URL`. */
export interface RemoteJwks {
  /** An `http:` or `https:` URL serving the JWKS document. */
  readonly url: string | URL;
  /** Seconds a fetched document is used before it is fetched again. Default 300; 0 fetches for every token (one fetch shared by concurrent callers). */
  readonly ttlSeconds?: number;
  /** Seconds past the TTL that the last good document stays usable while refreshes fail. Default 3600; after that, JWTs are refused. */
  readonly staleGraceSeconds?: number;
  /** Time limit of one request in ms. Default 5000; a request that runs over counts as a failed refresh. */
  readonly timeoutMs?: number;
}

export interface JwtAuthOptions {
  /** The exact `iss` every token must carry. Required; a token without `iss` is refused. */
  readonly issuer: string;
  /** The value `aud` must be or contain. Default `"macp-runtime"`; a token without `aud` is refused. */
  readonly audience?: string;
  /**
   * Accepted `alg` values. Default RS256 and ES256; HS256 only when listed.
   * An empty list is a configuration error. `none` is never accepted.
   */
  readonly algorithms?: readonly JwtAlgorithm[];
  /** Where the verification keys come from. HS256 secrets are `oct` keys of the set. */
  readonly jwks: InlineJwks | RemoteJwks;
}

export interface AuthenticatorOptions {
  /** Turns on the JWT resolver, which runs first. Default: none. */
  readonly jwt?: JwtAuthOptions;
  /**
   * The static token table (see `parseStaticTokens`). Default: none; an empty
   * table also configures no resolver. Empty, dotted, whitespace-containing or
   * duplicate tokens are configuration errors.
   */
  readonly staticTokens?: readonly StaticTokenEntry[];
  /**
   * Dev mode: every bearer value authenticates as that sender with full
   * privileges. Default false. Only allowed when neither `jwt` nor a
   * non-empty `staticTokens` is given; never turn it on outside development.
   */
  readonly devMode?: boolean;
  /** The source of time for token expiry and JWKS caching. Default: the system clock. */
  readonly clock?: { now(): number };
}

/** Turns request headers into the caller the runtime sees. */
export interface Authenticator {
  /**
   * Resolves the caller. Never rejects: every failure, including an
   * unreachable JWKS endpoint, comes back as `{ unauthenticated: reason }`.
   * Dev mode and static tokens answer synchronously; JWTs answer with a promise.
   */
  authenticate(headers: HeadersInput): Caller | Promise<Caller>;
  /** The configured resolvers in chain order, e.g. for a start-up log line. Empty in dev mode. */
  readonly resolvers: readonly ResolverName[];
  /** Whether dev mode is in effect. */
  readonly devMode: boolean;
  /** Aborts any JWKS request in flight; later calls to `authenticate` are refused. */
  close(): void;
}

/**
 * Builds the resolver chain of the MACP runtime: the JWT resolver (if
 * configured), then the static token resolver (if configured). A resolver
 * claims a credential, declines it (the next one gets it) or rejects it (the
 * chain stops). A credential nobody claims is unauthenticated, and so is a
 * request without one; there is never an anonymous caller.
 *
 * @throws TypeError when the options are inconsistent (see each option).
 */
export function createAuthenticator(options: AuthenticatorOptions): Authenticator {
  const clock = options.clock ?? { now: () => Date.now() };
  const now = () => clock.now();
  const chain: CredentialResolver[] = [];
  let keySource: KeySource | undefined;

  if (options.jwt !== undefined) {
    keySource = createKeySource(options.jwt.jwks, now);
    chain.push(
      createJwtResolver({
        issuer: requireNonEmpty(options.jwt.issuer, "jwt.issuer"),
        audience: requireNonEmpty(options.jwt.audience ?? DEFAULT_JWT_AUDIENCE, "jwt.audience"),
        algorithms: algorithmSet(options.jwt.algorithms ?? DEFAULT_JWT_ALGORITHMS),
        keySource,
        now,
      }),
    );
  }
  const staticTokens = options.staticTokens ?? [];
  if (staticTokens.length > 0) {
    const problem = findStaticTableProblem(staticTokens);
    if (problem !== undefined) throw new TypeError(`staticTokens: ${problem}`);
    chain.push(createStaticTokenResolver(staticTokens));
  }
  const devMode = options.devMode === true;
  if (devMode && chain.length > 0) {
    throw new TypeError(
      "devMode cannot be combined with jwt or staticTokens: dev mode would bypass them",
    );
  }

  // Runs the chain from `index`, synchronously for as long as resolvers answer synchronously.
  const runChain = (credential: Credential, index: number): Caller | Promise<Caller> => {
    for (let i = index; i < chain.length; i++) {
      const resolver = chain[i] as CredentialResolver;
      let outcome: ResolverOutcome | Promise<ResolverOutcome>;
      try {
        outcome = resolver.resolve(credential);
      } catch (error) {
        return internalError(resolver, error);
      }
      if (outcome instanceof Promise) {
        return outcome.then(
          (settled) => settle(settled) ?? runChain(credential, i + 1),
          (error: unknown) => internalError(resolver, error),
        );
      }
      const caller = settle(outcome);
      if (caller !== undefined) return caller;
    }
    return { unauthenticated: whyNobodyClaimed(credential, chain) };
  };

  const devIdentities = new Map<string, Identity>();
  let closed = false;
  return {
    resolvers: chain.map((resolver) => resolver.name),
    devMode,
    authenticate(headers) {
      if (closed) return { unauthenticated: "the authenticator is closed" };
      const lookup = findCredential(headers);
      if (!lookup.found) return { unauthenticated: lookup.reason };
      const { credential } = lookup;
      if (devMode) return devIdentity(devIdentities, credential.token);
      return runChain(credential, 0);
    },
    close() {
      closed = true;
      keySource?.close();
    },
  };
}

/** A claim ends the chain with an identity, a rejection with a reason; a decline continues. */
function settle(outcome: ResolverOutcome): Caller | undefined {
  if (outcome.kind === "claim") return outcome.identity;
  if (outcome.kind === "reject") return { unauthenticated: outcome.reason };
  return undefined;
}

/** Resolvers report failures as outcomes; reaching this is a bug, and a bug must never let a caller through. */
function internalError(resolver: CredentialResolver, error: unknown): Caller {
  return { unauthenticated: `${resolver.name}: internal error: ${errorMessage(error)}` };
}

const DEV_IDENTITY_CACHE = 4096;

/** Dev identities are immutable, so one per token is reused (bounded: tokens are caller-chosen). */
function devIdentity(cache: Map<string, Identity>, token: string): Identity {
  let identity = cache.get(token);
  if (identity === undefined) {
    if (cache.size >= DEV_IDENTITY_CACHE) cache.clear();
    identity = createDevIdentity(token);
    cache.set(token, identity);
  }
  return identity;
}

function createKeySource(jwks: InlineJwks | RemoteJwks, now: () => number): KeySource {
  if ("inline" in jwks) {
    const keys = parseJwks(jwks.inline);
    if (!keys.ok) throw new TypeError(`jwt.jwks.inline: ${keys.error}`);
    return inlineKeySource(keys.value);
  }
  let url: URL;
  try {
    url = new URL(jwks.url);
  } catch {
    throw new TypeError(`jwt.jwks.url: not a URL: ${String(jwks.url)}`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new TypeError(`jwt.jwks.url: expected an http: or https: URL, got ${url.protocol}`);
  }
  return remoteKeySource({
    url,
    ttlMs: 1000 * nonNegative(jwks.ttlSeconds ?? DEFAULT_JWKS_TTL_SECONDS, "jwt.jwks.ttlSeconds"),
    staleGraceMs:
      1000 *
      nonNegative(
        jwks.staleGraceSeconds ?? DEFAULT_JWKS_STALE_GRACE_SECONDS,
        "jwt.jwks.staleGraceSeconds",
      ),
    timeoutMs: nonNegative(jwks.timeoutMs ?? DEFAULT_JWKS_TIMEOUT_MS, "jwt.jwks.timeoutMs"),
    now,
  });
}

function algorithmSet(algorithms: readonly JwtAlgorithm[]): ReadonlySet<JwtAlgorithm> {
  if (algorithms.length === 0) throw new TypeError("jwt.algorithms must not be empty");
  for (const algorithm of algorithms) {
    if (!JWT_ALGORITHMS.includes(algorithm)) {
      throw new TypeError(
        `jwt.algorithms: unsupported algorithm ${JSON.stringify(algorithm)} (supported: ${JWT_ALGORITHMS.join(", ")})`,
      );
    }
  }
  return new Set(algorithms);
}

function requireNonEmpty(value: string, option: string): string {
  if (typeof value !== "string" || value === "") {
    throw new TypeError(`${option} must be a non-empty string`);
  }
  return value;
}

function nonNegative(value: number, option: string): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw new TypeError(`${option} must be a non-negative number`);
  }
  return value;
}

/** A reason that tells the caller which header or resolver would have accepted the token. */
function whyNobodyClaimed(credential: Credential, chain: readonly CredentialResolver[]): string {
  if (chain.length === 0) {
    return "no authentication configured: the runtime accepts no credentials";
  }
  const looksLikeJwt = credential.token.includes(".");
  const hasJwt = chain.some((resolver) => resolver.name === "jwt_bearer");
  if (looksLikeJwt && hasJwt && credential.source === "x-macp-token") {
    return "JWTs are accepted only as 'authorization: Bearer <jwt>', not in x-macp-token";
  }
  if (looksLikeJwt) return "the token looks like a JWT but no JWT issuer is configured";
  return "opaque tokens are not accepted: no static tokens are configured";
}
