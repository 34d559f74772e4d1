import { createIdentity, type Identity } from "@macp/core";
import { sha256 } from "@noble/hashes/sha2.js";
import { readCapabilities } from "./capabilities.js";
import { errorMessage, isJsonObject } from "./json-checks.js";
import { type ParseResult, parsed, parseError } from "./parse-result.js";
import { type CredentialResolver, claim, DECLINE, reject } from "./resolver.js";

/** One row of the static token table: the opaque token and the identity it stands for. */
export interface StaticTokenEntry {
  readonly token: string;
  readonly identity: Identity;
}

const ENTRY_FIELDS = new Set([
  "token",
  "sender",
  "allowed_modes",
  "can_start_sessions",
  "max_open_sessions",
  "can_manage_mode_registry",
  "is_observer",
]);

/**
 * Parses the static token JSON of `MACP_AUTH_TOKENS_JSON` / `MACP_AUTH_TOKENS_FILE`:
 * a bare array of entries or `{"tokens": [...]}`. Each entry is
 * `{ token, sender, allowed_modes?, can_start_sessions? (true), max_open_sessions?,
 * can_manage_mode_registry? (false), is_observer? (false) }`; an empty or
 * missing `allowed_modes` allows every mode.
 *
 * Stricter than the reference, which ignores unknown fields and lets the last
 * duplicate win: a misspelt capability flag or a repeated token is far more
 * likely a mistake than intent, so both are errors here. So is a token that
 * could never authenticate (empty, containing whitespace, or containing a `.`,
 * which routes it to the JWT resolver).
 */
export function parseStaticTokens(json: string): ParseResult<StaticTokenEntry[]> {
  let document: unknown;
  try {
    document = JSON.parse(json);
  } catch (error) {
    return parseError(`invalid JSON: ${errorMessage(error)}`);
  }
  return staticTokensFromDocument(document);
}

function staticTokensFromDocument(document: unknown): ParseResult<StaticTokenEntry[]> {
  let rows: unknown;
  if (Array.isArray(document)) {
    rows = document;
  } else if (isJsonObject(document)) {
    const unknownKeys = Object.keys(document).filter((key) => key !== "tokens");
    if (unknownKeys.length > 0) {
      return parseError(`unknown field ${quote(unknownKeys[0])} (expected only "tokens")`);
    }
    rows = document.tokens;
    if (!Array.isArray(rows)) {
      return parseError('"tokens" must be an array of token entries');
    }
  } else {
    return parseError('expected an array of token entries or an object {"tokens": [...]}');
  }
  const entries: StaticTokenEntry[] = [];
  for (const [index, row] of (rows as unknown[]).entries()) {
    const entry = entryFromJson(row, `tokens[${index}]`);
    if (!entry.ok) return entry;
    entries.push(entry.value);
  }
  const problem = findStaticTableProblem(entries);
  return problem === undefined ? parsed(entries) : parseError(problem);
}

function entryFromJson(row: unknown, at: string): ParseResult<StaticTokenEntry> {
  if (!isJsonObject(row)) return parseError(`${at} must be an object`);
  const unknownField = Object.keys(row).find((key) => !ENTRY_FIELDS.has(key));
  if (unknownField !== undefined) {
    return parseError(`${at} has unknown field ${quote(unknownField)}`);
  }
  const { token, sender } = row;
  if (token === undefined) return parseError(`${at} is missing "token"`);
  if (typeof token !== "string") return parseError(`${at}.token must be a string`);
  if (sender === undefined) return parseError(`${at} is missing "sender"`);
  if (typeof sender !== "string" || sender === "") {
    return parseError(`${at}.sender must be a non-empty string`);
  }
  const capabilities = readCapabilities(row, at);
  if (!capabilities.ok) return capabilities;
  const { allowedModes, ...flags } = capabilities.value;
  const identity = createIdentity({
    sender,
    ...flags,
    // An empty list is "unrestricted" for static tokens (unlike a JWT's macp_scopes).
    allowedModes: allowedModes === null || allowedModes.length === 0 ? null : allowedModes,
  });
  return parsed({ token, identity });
}

/** Why a token table cannot be used as given, or `undefined` when it can. */
export function findStaticTableProblem(entries: readonly StaticTokenEntry[]): string | undefined {
  const seen = new Set<string>();
  for (const [index, { token, identity }] of entries.entries()) {
    const at = `tokens[${index}]`;
    if (token === "") return `${at}.token must not be empty`;
    if (/\s/.test(token)) return `${at}.token must not contain whitespace`;
    if (token.includes(".")) {
      return `${at}.token must not contain "." (dotted tokens are treated as JWTs and never reach the static resolver)`;
    }
    if (identity.sender === "") return `${at}.sender must be a non-empty string`;
    if (seen.has(token)) {
      return `${at}.token duplicates an earlier entry (sender ${quote(identity.sender)}); each token must be unique`;
    }
    seen.add(token);
  }
  return undefined;
}

/**
 * The static resolver. Tokens are compared through their SHA-256 digests in
 * constant time, and every row is compared on every lookup, so the time taken
 * says nothing about how much of a guess was right or which row matched.
 * (@noble/hashes rather than node:crypto keeps the package free of Node built-ins.)
 */
export function createStaticTokenResolver(
  entries: readonly StaticTokenEntry[],
): CredentialResolver {
  const rows = entries.map(({ token, identity }) => ({ digest: digestOf(token), identity }));
  return {
    name: "static_bearer",
    resolve(credential) {
      if (credential.token.includes(".")) return DECLINE;
      const presented = digestOf(credential.token);
      let match: Identity | undefined;
      for (const row of rows) {
        if (digestsEqual(row.digest, presented) && match === undefined) {
          match = row.identity;
        }
      }
      return match === undefined ? reject("static_bearer: unknown token") : claim(match);
    },
  };
}

const utf8 = new TextEncoder();

function digestOf(token: string): Uint8Array {
  return sha256(utf8.encode(token));
}

/** Compares two digests of equal length without stopping at the first difference. */
function digestsEqual(a: Uint8Array, b: Uint8Array): boolean {
  let difference = a.length ^ b.length;
  for (let index = 0; index < a.length; index++) difference |= (a[index] ?? 0) ^ (b[index] ?? 0);
  return difference === 0;
}

function quote(text: string | undefined): string {
  return JSON.stringify(text ?? "");
}
