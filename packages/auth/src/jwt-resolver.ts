import { createIdentity, type Identity } from "@macp/core";
import {
  decodeProtectedHeader,
  errors,
  type JWTPayload,
  jwtVerify,
  type ProtectedHeaderParameters,
} from "jose";
import { readCapabilities } from "./capabilities.js";
import { errorMessage, isJsonObject } from "./json-checks.js";
import { JWT_ALGORITHMS, type JwtAlgorithm, type KeySource, type VerificationKey } from "./jwks.js";
import { type ParseResult, parsed, parseError } from "./parse-result.js";
import {
  type CredentialResolver,
  claim,
  DECLINE,
  type ResolverOutcome,
  reject,
} from "./resolver.js";

/** Seconds of clock skew tolerated on `exp` (and `nbf`), as in the reference runtime. */
export const JWT_CLOCK_TOLERANCE_SECONDS = 60;

export interface JwtResolverConfig {
  readonly issuer: string;
  readonly audience: string;
  readonly algorithms: ReadonlySet<JwtAlgorithm>;
  readonly keySource: KeySource;
  readonly now: () => number;
}

/**
 * The JWT resolver. It claims only dotted tokens from `authorization: Bearer`
 * and requires a valid signature, `iss` equal to the issuer, `aud` naming the
 * audience, a current `exp` and a string `sub`. Unlike the reference, a token
 * without `iss` or `aud` is refused rather than let through.
 */
export function createJwtResolver(config: JwtResolverConfig): CredentialResolver {
  const { issuer, audience, algorithms, keySource, now } = config;
  const fail = (reason: string) => reject(`jwt_bearer: ${reason}`);

  return {
    name: "jwt_bearer",
    resolve(credential) {
      // Declining is synchronous, so opaque tokens reach the static resolver without a promise hop.
      if (credential.source !== "authorization" || !credential.token.includes(".")) {
        return DECLINE;
      }
      return verify(credential.token);
    },
  };

  async function verify(token: string): Promise<ResolverOutcome> {
    let header: ProtectedHeaderParameters;
    try {
      header = decodeProtectedHeader(token);
    } catch {
      return fail("malformed token header");
    }
    const { alg, kid } = header;
    if (typeof alg !== "string") return fail('the token header has no "alg"');
    // Checked before the allow-list so the refusal says exactly why.
    if (alg.toLowerCase() === "none") return fail("unsigned tokens (alg none) are refused");
    const algorithm = JWT_ALGORITHMS.find((known) => known === alg);
    if (algorithm === undefined || !algorithms.has(algorithm)) {
      // The header is the caller's text: bound what of it reaches the logs.
      const shown = alg.length > 32 ? `${alg.slice(0, 32)}…` : alg;
      return fail(`algorithm ${shown} is not allowed (allowed: ${[...algorithms].join(", ")})`);
    }

    let candidates: readonly VerificationKey[];
    try {
      candidates = (await keySource.keys()).candidates(
        algorithm,
        typeof kid === "string" ? kid : undefined,
      );
    } catch (error) {
      return fail(errorMessage(error));
    }

    let lastFailure = `no key in the JWKS can verify an ${algorithm} token`;
    for (const candidate of candidates) {
      const key = await candidate.load();
      if (key === undefined) continue;
      try {
        const { payload } = await jwtVerify(token, key, {
          algorithms: [algorithm],
          issuer,
          audience,
          requiredClaims: ["exp", "sub"],
          clockTolerance: JWT_CLOCK_TOLERANCE_SECONDS,
          currentDate: new Date(now()),
        });
        const identity = identityFromClaims(payload);
        return identity.ok ? claim(identity.value) : fail(identity.error);
      } catch (error) {
        // Another key of the set may still match. A TypeError means jose
        // refused this key (an RSA modulus under 2048 bits, say), which is
        // no reason to stop trying the others. Any other failure is about
        // the token itself and would not change with a different key.
        if (error instanceof errors.JWSSignatureVerificationFailed) {
          lastFailure = "invalid signature";
          continue;
        }
        if (error instanceof TypeError) {
          lastFailure = `unusable key in the JWKS: ${error.message}`;
          continue;
        }
        return fail(describeVerificationFailure(error));
      }
    }
    return fail(lastFailure);
  }
}

function describeVerificationFailure(error: unknown): string {
  if (error instanceof errors.JWTExpired) return "token expired";
  if (error instanceof errors.JWTClaimValidationFailed) {
    const missing = error.reason === "missing";
    switch (error.claim) {
      case "iss":
        return missing ? 'the token has no "iss" claim' : "invalid issuer";
      case "aud":
        return missing ? 'the token has no "aud" claim' : "invalid audience";
      case "sub":
        return 'the token has no "sub" claim';
      case "exp":
        return missing ? 'the token has no "exp" claim' : '"exp" must be a number';
      case "nbf":
        return "token not yet valid (nbf)";
      default:
        return `invalid ${error.claim} claim: ${error.message}`;
    }
  }
  return `invalid token: ${errorMessage(error)}`;
}

/**
 * Maps the verified claims to an identity: `sub` is the sender and the
 * optional `macp_scopes` object carries the capabilities. Unlike the static
 * table, `allowed_modes: []` here is an empty allow-set (no mode at all);
 * only a missing list means every mode.
 */
function identityFromClaims(payload: JWTPayload): ParseResult<Identity> {
  const { sub } = payload;
  if (typeof sub !== "string" || sub === "") return parseError('"sub" must be a non-empty string');
  const scopes = payload.macp_scopes ?? {};
  if (!isJsonObject(scopes)) return parseError('"macp_scopes" must be an object');

  const capabilities = readCapabilities(scopes, "macp_scopes");
  if (!capabilities.ok) return capabilities;
  return parsed(createIdentity({ sender: sub, ...capabilities.value }));
}
