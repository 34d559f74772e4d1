import { readFileSync } from "node:fs";
import {
  type AuthenticatorOptions,
  DEFAULT_JWKS_TTL_SECONDS,
  DEFAULT_JWT_ALGORITHMS,
  DEFAULT_JWT_AUDIENCE,
  type JsonWebKeySet,
  JWT_ALGORITHMS,
  type JwtAlgorithm,
  type JwtAuthOptions,
  parseStaticTokens,
  type ResolverName,
  type StaticTokenEntry,
  validateJwks,
} from "@macp/auth";

/** The authentication settings read from the environment. */
export interface AuthEnvConfig {
  /** Ready for {@link createAuthenticator}. */
  readonly options: AuthenticatorOptions;
  /** The resolvers in chain order, for the `auth resolver chain initialized` log line. */
  readonly resolvers: readonly ResolverName[];
  /** True when no resolver is configured and `MACP_ALLOW_INSECURE=1`: any bearer value is accepted. */
  readonly devMode: boolean;
  /** `MACP_ALLOW_INSECURE` is exactly `1`. The host also uses it for its TLS gate. */
  readonly allowInsecure: boolean;
  /** Settings that were ignored or fell back to a default; the host should log them. */
  readonly warnings: readonly string[];
}

/** A setting that stops the runtime from starting. */
export interface AuthEnvError {
  /** The environment variable at fault. */
  readonly variable: string;
  /** A complete message that starts with the variable's name. */
  readonly message: string;
}

export type AuthEnvResult =
  | { readonly ok: true; readonly value: AuthEnvConfig }
  | { readonly ok: false; readonly errors: readonly AuthEnvError[] };

/**
 * Reads the authentication variables of the reference runtime:
 * `MACP_AUTH_TOKENS_JSON` (wins over `MACP_AUTH_TOKENS_FILE`), `MACP_AUTH_ISSUER`,
 * `MACP_AUTH_AUDIENCE`, `MACP_AUTH_JWKS_JSON` (wins over `MACP_AUTH_JWKS_URL`),
 * `MACP_AUTH_JWKS_TTL_SECS`, `MACP_AUTH_JWT_ALGS` and `MACP_ALLOW_INSECURE`
 * (on only for exactly `1`). It reads the tokens file synchronously, as a
 * start-up step.
 *
 * Every problem found is returned, not just the first. Where the reference
 * only logs and carries on with less security (an unparsable inline JWKS, an
 * unknown algorithm in the allow-list) this refuses instead. When no resolver
 * is configured, start-up is refused unless `MACP_ALLOW_INSECURE=1`, which
 * turns on dev mode.
 */
export function authConfigFromEnv(
  env: Readonly<Record<string, string | undefined>>,
): AuthEnvResult {
  const errors: AuthEnvError[] = [];
  const warnings: string[] = [];
  const fail = (variable: string, detail: string) =>
    errors.push({ variable, message: `${variable}: ${detail}` });

  const allowInsecure = env.MACP_ALLOW_INSECURE === "1";
  const staticTokens = staticTokensFromEnv(env, fail, warnings);
  const jwt = jwtOptionsFromEnv(env, fail, warnings);
  if (errors.length > 0) return { ok: false, errors };

  const resolvers: ResolverName[] = [];
  if (jwt !== undefined) resolvers.push("jwt_bearer");
  if (staticTokens.length > 0) resolvers.push("static_bearer");
  const devMode = resolvers.length === 0;
  if (devMode && !allowInsecure) {
    fail(
      "MACP_ALLOW_INSECURE",
      "no authentication configured: set MACP_AUTH_TOKENS_FILE or MACP_AUTH_TOKENS_JSON, " +
        "or MACP_AUTH_ISSUER with MACP_AUTH_JWKS_JSON or MACP_AUTH_JWKS_URL; " +
        "or set MACP_ALLOW_INSECURE=1 to run in dev mode, where any bearer value is accepted as the sender",
    );
    return { ok: false, errors };
  }
  if (devMode) {
    warnings.push(
      "dev mode: no authentication configured and MACP_ALLOW_INSECURE=1, so any bearer value " +
        "authenticates as that sender with full privileges; never run like this in production",
    );
  }
  const options: AuthenticatorOptions = {
    ...(jwt === undefined ? {} : { jwt }),
    ...(staticTokens.length === 0 ? {} : { staticTokens }),
    devMode,
  };
  return { ok: true, value: { options, resolvers, devMode, allowInsecure, warnings } };
}

type Fail = (variable: string, detail: string) => void;

function staticTokensFromEnv(
  env: Readonly<Record<string, string | undefined>>,
  fail: Fail,
  warnings: string[],
): StaticTokenEntry[] {
  const inline = env.MACP_AUTH_TOKENS_JSON;
  const file = env.MACP_AUTH_TOKENS_FILE;
  let source: { variable: string; text: string };
  if (inline !== undefined) {
    if (file !== undefined) {
      warnings.push("MACP_AUTH_TOKENS_FILE is ignored because MACP_AUTH_TOKENS_JSON is set");
    }
    source = { variable: "MACP_AUTH_TOKENS_JSON", text: inline };
  } else if (file !== undefined) {
    try {
      source = { variable: "MACP_AUTH_TOKENS_FILE", text: readFileSync(file, "utf8") };
    } catch (error) {
      fail("MACP_AUTH_TOKENS_FILE", `cannot read ${JSON.stringify(file)}: ${errorMessage(error)}`);
      return [];
    }
  } else {
    return [];
  }
  const tokens = parseStaticTokens(source.text);
  if (!tokens.ok) {
    fail(source.variable, tokens.error);
    return [];
  }
  if (tokens.value.length === 0) {
    warnings.push(`${source.variable} holds no tokens, so it configures no static resolver`);
  }
  return tokens.value;
}

const JWT_ONLY_VARIABLES = [
  "MACP_AUTH_AUDIENCE",
  "MACP_AUTH_JWKS_JSON",
  "MACP_AUTH_JWKS_URL",
  "MACP_AUTH_JWKS_TTL_SECS",
  "MACP_AUTH_JWT_ALGS",
] as const;

function jwtOptionsFromEnv(
  env: Readonly<Record<string, string | undefined>>,
  fail: Fail,
  warnings: string[],
): JwtAuthOptions | undefined {
  const issuer = env.MACP_AUTH_ISSUER;
  if (issuer === undefined) {
    const ignored = JWT_ONLY_VARIABLES.filter((variable) => env[variable] !== undefined);
    if (ignored.length > 0) {
      warnings.push(`${ignored.join(", ")} ignored because MACP_AUTH_ISSUER is not set`);
    }
    return undefined;
  }
  const inlineJwks = env.MACP_AUTH_JWKS_JSON;
  const jwksUrl = env.MACP_AUTH_JWKS_URL;
  if (inlineJwks === undefined && jwksUrl === undefined) {
    // The reference silently runs without a JWT resolver here; keep that, but say so.
    warnings.push(
      "MACP_AUTH_ISSUER is set but neither MACP_AUTH_JWKS_JSON nor MACP_AUTH_JWKS_URL is, " +
        "so no JWT resolver is configured",
    );
    return undefined;
  }

  let failed = false;
  const failJwt: Fail = (variable, detail) => {
    failed = true;
    fail(variable, detail);
  };
  if (issuer === "") failJwt("MACP_AUTH_ISSUER", "must not be empty");
  const audience = env.MACP_AUTH_AUDIENCE ?? DEFAULT_JWT_AUDIENCE;
  if (audience === "") failJwt("MACP_AUTH_AUDIENCE", "must not be empty");
  const algorithms = algorithmsFromEnv(env.MACP_AUTH_JWT_ALGS, failJwt, warnings);

  let jwks: JwtAuthOptions["jwks"] | undefined;
  if (inlineJwks !== undefined) {
    if (jwksUrl !== undefined) {
      warnings.push("MACP_AUTH_JWKS_URL is ignored because MACP_AUTH_JWKS_JSON is set");
    }
    const inline = inlineJwksFromEnv(inlineJwks, failJwt);
    if (inline !== undefined) jwks = { inline };
  } else if (jwksUrl !== undefined) {
    const url = jwksUrlFromEnv(jwksUrl, failJwt, warnings);
    const ttlSeconds = ttlFromEnv(env.MACP_AUTH_JWKS_TTL_SECS, warnings);
    if (url !== undefined) jwks = { url, ttlSeconds };
  }
  if (failed || jwks === undefined) return undefined;
  return { issuer, audience, algorithms, jwks };
}

function algorithmsFromEnv(
  value: string | undefined,
  fail: Fail,
  warnings: string[],
): readonly JwtAlgorithm[] {
  if (value === undefined) return DEFAULT_JWT_ALGORITHMS;
  const algorithms = new Set<JwtAlgorithm>();
  for (const name of value.split(",")) {
    const wanted = name.trim().toUpperCase();
    if (wanted === "") continue;
    const algorithm = JWT_ALGORITHMS.find((known) => known === wanted);
    if (algorithm === undefined) {
      // The reference skips unknown names with a warning; an allow-list that
      // silently differs from what the operator wrote is worse than a refusal.
      const why =
        wanted === "NONE" ? "is refused: unsigned tokens are never accepted" : "is not supported";
      fail(
        "MACP_AUTH_JWT_ALGS",
        `${JSON.stringify(name.trim())} ${why} (supported: ${JWT_ALGORITHMS.join(", ")})`,
      );
      continue;
    }
    algorithms.add(algorithm);
  }
  if (algorithms.size === 0) {
    warnings.push(
      `MACP_AUTH_JWT_ALGS names no algorithm; using the default ${DEFAULT_JWT_ALGORITHMS.join(",")}`,
    );
    return DEFAULT_JWT_ALGORITHMS;
  }
  return [...algorithms];
}

function inlineJwksFromEnv(text: string, fail: Fail): JsonWebKeySet | undefined {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    fail("MACP_AUTH_JWKS_JSON", `invalid JSON: ${errorMessage(error)}`);
    return undefined;
  }
  // Refused rather than skipped (the reference logs and starts without a JWT
  // resolver): an operator who set a JWKS expects tokens to be checked.
  const keys = validateJwks(document);
  if (!keys.ok) {
    fail("MACP_AUTH_JWKS_JSON", keys.error);
    return undefined;
  }
  return keys.value;
}

function jwksUrlFromEnv(value: string, fail: Fail, warnings: string[]): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    fail("MACP_AUTH_JWKS_URL", `not a URL: ${JSON.stringify(value)}`);
    return undefined;
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    fail("MACP_AUTH_JWKS_URL", `expected an http: or https: URL, got ${url.protocol}`);
    return undefined;
  }
  if (url.protocol === "http:" && !isLoopback(url.hostname)) {
    warnings.push(
      `MACP_AUTH_JWKS_URL uses plain http to ${url.host}: anyone on the path can substitute keys`,
    );
  }
  return url.href;
}

function isLoopback(hostname: string): boolean {
  return hostname === "localhost" || hostname === "[::1]" || hostname.startsWith("127.");
}

function ttlFromEnv(value: string | undefined, warnings: string[]): number {
  if (value === undefined) return DEFAULT_JWKS_TTL_SECONDS;
  // As in the reference, a bad TTL falls back to the default rather than stopping start-up.
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) {
    warnings.push(
      `MACP_AUTH_JWKS_TTL_SECS ${JSON.stringify(value)} is not a whole number of seconds; using ${DEFAULT_JWKS_TTL_SECONDS}`,
    );
    return DEFAULT_JWKS_TTL_SECONDS;
  }
  return Number(value);
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
