import type { Credential } from "./resolver.js";

/** Anything with a WHATWG-style `get`, such as `Headers` or Connect's request headers. */
export interface HeaderLookup {
  get(name: string): string | null;
}

/**
 * Request headers as the transports hand them over: a WHATWG `Headers`, or a
 * plain record such as Node's `IncomingHttpHeaders` or gRPC metadata turned
 * into an object. Names are matched case-insensitively; for a repeated
 * header the first value counts, as it does in the reference runtime.
 */
export type HeadersInput =
  | HeaderLookup
  | Readonly<Record<string, string | readonly string[] | undefined>>;

/** The result of looking for a credential: one to resolve, or the reason there is none. */
export type CredentialLookup =
  | { readonly found: true; readonly credential: Credential }
  | { readonly found: false; readonly reason: string };

const BEARER_PREFIX = "Bearer ";

// RFC 6750 tokens never contain whitespace; one that does is a mangled header,
// and accepting it would let "Bearer  x" and "Bearer x" name different senders.
const WHITESPACE = /\s/;

export const MISSING_CREDENTIALS =
  "missing credentials: send 'authorization: Bearer <token>' or 'x-macp-token: <token>'";

/**
 * Finds the caller's bearer token. `authorization: Bearer <token>` wins (the
 * prefix is case-sensitive with exactly one space); an absent Authorization
 * header or one with another scheme falls back to `x-macp-token`.
 */
export function findCredential(headers: HeadersInput): CredentialLookup {
  const authorization = readHeader(headers, "authorization");
  if (authorization?.startsWith(BEARER_PREFIX)) {
    const token = authorization.slice(BEARER_PREFIX.length);
    if (token === "" || WHITESPACE.test(token)) {
      return {
        found: false,
        reason: "malformed authorization header: expected 'Bearer <token>' with a single space",
      };
    }
    return { found: true, credential: { token, source: "authorization" } };
  }
  const headerToken = readHeader(headers, "x-macp-token");
  if (headerToken !== undefined && headerToken !== "") {
    if (WHITESPACE.test(headerToken)) {
      return {
        found: false,
        reason: "malformed x-macp-token header: the token contains whitespace",
      };
    }
    return { found: true, credential: { token: headerToken, source: "x-macp-token" } };
  }
  if (authorization !== undefined) {
    return {
      found: false,
      reason: "unsupported authorization scheme: expected 'Bearer <token>' (case-sensitive)",
    };
  }
  return { found: false, reason: MISSING_CREDENTIALS };
}

function readHeader(headers: HeadersInput, name: string): string | undefined {
  if (isHeaderLookup(headers)) {
    return headers.get(name) ?? undefined;
  }
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() !== name || value === undefined) continue;
    if (typeof value === "string") return value;
    const first = value[0];
    if (first !== undefined) return first;
  }
  return undefined;
}

function isHeaderLookup(headers: HeadersInput): headers is HeaderLookup {
  return typeof (headers as Partial<HeaderLookup>).get === "function";
}
