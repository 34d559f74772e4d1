import type { Identity } from "@macp/core";

/** The names the reference runtime logs for its resolvers; kept so operators see familiar names. */
export type ResolverName = "jwt_bearer" | "static_bearer";

/** Where a credential was found. The JWT resolver trusts only the Authorization header. */
export type CredentialSource = "authorization" | "x-macp-token";

/** A bearer credential taken from the request headers. */
export interface Credential {
  readonly token: string;
  readonly source: CredentialSource;
}

/**
 * What one resolver makes of a credential. A decline passes the credential to
 * the next resolver; a rejection ends the chain, so a credential a resolver
 * recognises as its own can never be reinterpreted by a weaker resolver.
 */
export type ResolverOutcome =
  | { readonly kind: "claim"; readonly identity: Identity }
  | { readonly kind: "decline" }
  | { readonly kind: "reject"; readonly reason: string };

/**
 * One link of the resolver chain. Resolvers that need no I/O answer
 * synchronously, so a request authenticated by them costs no promise hop.
 */
export interface CredentialResolver {
  readonly name: ResolverName;
  resolve(credential: Credential): ResolverOutcome | Promise<ResolverOutcome>;
}

export const DECLINE: ResolverOutcome = { kind: "decline" };

export function reject(reason: string): ResolverOutcome {
  return { kind: "reject", reason };
}

export function claim(identity: Identity): ResolverOutcome {
  return { kind: "claim", identity };
}
