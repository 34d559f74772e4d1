// @macp/auth: turns request headers into the caller a MACP runtime sees.
// Dev mode, static tokens and JWT (jose), composed into the resolver chain of
// the reference runtime. Knows nothing of Connect or any HTTP framework.

export {
  type Authenticator,
  type AuthenticatorOptions,
  createAuthenticator,
  DEFAULT_JWKS_STALE_GRACE_SECONDS,
  DEFAULT_JWKS_TIMEOUT_MS,
  DEFAULT_JWKS_TTL_SECONDS,
  DEFAULT_JWT_ALGORITHMS,
  DEFAULT_JWT_AUDIENCE,
  type InlineJwks,
  type JwtAuthOptions,
  type RemoteJwks,
} from "./authenticator.js";
export type { HeaderLookup, HeadersInput } from "./credentials.js";
export { type JsonWebKeySet, JWT_ALGORITHMS, type JwtAlgorithm, validateJwks } from "./jwks.js";
export { JWT_CLOCK_TOLERANCE_SECONDS } from "./jwt-resolver.js";
export type { ParseResult } from "./parse-result.js";
export type { ResolverName } from "./resolver.js";
export { parseStaticTokens, type StaticTokenEntry } from "./static-tokens.js";
