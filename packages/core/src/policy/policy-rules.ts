import { err, ok, type Result } from "neverthrow";
import { isJsonObject, type JsonObject, type JsonValue } from "../json.js";
import { isDeeplyFrozen } from "./frozen-json.js";

// What every mode's rules share: the reader that turns a policy's `rules` object
// into a typed view, the commitment section (modes.md §0.5) and the caches.
// Each mode's own view lives in its folder (modes/<mode>/<mode>-rules.ts).
// Parsing follows the reference runtime's deserialisation: unknown keys are
// ignored, missing keys take their defaults, a value of the wrong JSON type is
// an error. Enum-like strings stay free-form here (an unknown algorithm fails at
// evaluation, an unknown authority means initiator-only); registration checks
// them against the JSON Schemas separately.

/** Who may send a Commitment (modes.md §0.5), shared by every mode's rules. */
export interface CommitmentRules {
  /** "initiator_only" (default), "any_participant", "designated_role"; anything else acts as initiator_only. */
  readonly authority: string;
  /** Literal sender ids allowed to commit under "designated_role". */
  readonly designatedRoles: readonly string[];
  /** Decision only: enforce `voting.quorum` at Commitment. */
  readonly requireVoteQuorum: boolean;
  /** Decision only (schema v2): allow a decline although the vote passed. */
  readonly allowDeclineOverApproval: boolean;
}

export const DEFAULT_COMMITMENT_RULES: CommitmentRules = {
  authority: "initiator_only",
  designatedRoles: [],
  requireVoteQuorum: false,
  allowDeclineOverApproval: false,
};

/** Reads fields out of a JSON object, collecting type problems instead of stopping at the first. */
export class RuleReader {
  readonly problems: string[] = [];

  section(parent: JsonObject, key: string, path: string): JsonObject {
    const value = ownValue(parent, key);
    if (value === undefined) return {};
    if (isJsonObject(value)) return value;
    this.problems.push(`${path}${key} must be an object`);
    return {};
  }

  bool(parent: JsonObject, key: string, path: string, fallback: boolean): boolean {
    const value = ownValue(parent, key);
    if (value === undefined) return fallback;
    if (typeof value === "boolean") return value;
    this.problems.push(`${path}${key} must be a boolean`);
    return fallback;
  }

  number(parent: JsonObject, key: string, path: string, fallback: number): number {
    const value = ownValue(parent, key);
    if (value === undefined) return fallback;
    if (typeof value === "number" && Number.isFinite(value)) return value;
    this.problems.push(`${path}${key} must be a number`);
    return fallback;
  }

  /** An unsigned integer, as the runtime's u32/u64 fields demand (no sign, no fraction). */
  unsigned(parent: JsonObject, key: string, path: string, fallback: number): number {
    const value = ownValue(parent, key);
    if (value === undefined) return fallback;
    if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) return value;
    this.problems.push(`${path}${key} must be a non-negative integer`);
    return fallback;
  }

  string(parent: JsonObject, key: string, path: string, fallback: string): string {
    const value = ownValue(parent, key);
    if (value === undefined) return fallback;
    if (typeof value === "string") return value;
    this.problems.push(`${path}${key} must be a string`);
    return fallback;
  }

  oneOf<T extends string>(
    parent: JsonObject,
    key: string,
    path: string,
    allowed: readonly T[],
    fallback: T,
  ): T {
    const value = this.string(parent, key, path, fallback);
    const match = allowed.find((candidate) => candidate === value);
    if (match !== undefined) return match;
    this.problems.push(`${path}${key} must be one of ${allowed.join(", ")}`);
    return fallback;
  }

  strings(parent: JsonObject, key: string, path: string): readonly string[] {
    const value = ownValue(parent, key);
    if (value === undefined) return [];
    if (Array.isArray(value) && value.every((item) => typeof item === "string")) {
      return value as string[];
    }
    this.problems.push(`${path}${key} must be an array of strings`);
    return [];
  }

  numberMap(parent: JsonObject, key: string, path: string): ReadonlyMap<string, number> {
    const value = ownValue(parent, key);
    const map = new Map<string, number>();
    if (value === undefined) return map;
    if (!isJsonObject(value)) {
      this.problems.push(`${path}${key} must be an object`);
      return map;
    }
    for (const [id, weight] of Object.entries(value)) {
      if (typeof weight === "number" && Number.isFinite(weight)) map.set(id, weight);
      else this.problems.push(`${path}${key}.${id} must be a number`);
    }
    return map;
  }

  commitment(rules: JsonObject): CommitmentRules {
    const commitment = this.section(rules, "commitment", "");
    return {
      authority: this.string(commitment, "authority", "commitment.", "initiator_only"),
      designatedRoles: this.strings(commitment, "designated_roles", "commitment."),
      requireVoteQuorum: this.bool(commitment, "require_vote_quorum", "commitment.", false),
      allowDeclineOverApproval: this.bool(
        commitment,
        "allow_decline_over_approval",
        "commitment.",
        false,
      ),
    };
  }

  finish<T>(value: T): Result<T, string> {
    return this.problems.length === 0 ? ok(value) : err(this.problems.join("; "));
  }
}

/** Own-property lookup, so keys like "__proto__" or "constructor" never reach the prototype. */
function ownValue(object: JsonObject, key: string): JsonValue | undefined {
  return Object.hasOwn(object, key) ? object[key] : undefined;
}

export function parseCommitmentRules(rules: JsonObject): Result<CommitmentRules, string> {
  const reader = new RuleReader();
  return reader.finish(reader.commitment(rules));
}

/** The commitment rules, or the initiator-only default when they are missing or unreadable (modes.md §0.5). */
export function commitmentRulesOrDefault(rules: JsonObject): CommitmentRules {
  return parseCommitmentRules(rules).unwrapOr(DEFAULT_COMMITMENT_RULES);
}

/**
 * Memoizes a function of a rules object. Only rules that can never change
 * (frozen by the policy registry or the log codec) are cached; any other rules
 * object is read on every call, as before. Reading rules is pure, so a cached
 * value is the one a fresh read would give. Values are shared: callers must not
 * mutate them.
 */
export function memoizeByRules<R>(read: (rules: JsonObject) => R): (rules: JsonObject) => R {
  const cache = new WeakMap<JsonObject, R>();
  return (rules) => {
    if (cache.has(rules)) return cache.get(rules) as R;
    const value = read(rules);
    if (isDeeplyFrozen(rules)) cache.set(rules, value);
    return value;
  };
}

/** {@link commitmentRulesOrDefault}, read once per immutable rules object. */
export const cachedCommitmentRules = memoizeByRules(commitmentRulesOrDefault);

/**
 * The rules a mode applies before Commitment (convergence criterion, reassignment,
 * thresholds, timeouts). Rules that cannot be read fall back to the defaults as a
 * whole, as the reference runtime does; the Commitment evaluator then denies.
 */
export function rulesOrDefaults<R>(
  parse: (rules: JsonObject) => Result<R, string>,
  rules: JsonObject,
): R {
  let read = rulesOrDefaultsReaders.get(parse) as ((rules: JsonObject) => R) | undefined;
  if (read === undefined) {
    read = memoizeByRules((value) => parseOrDefaults(parse, value));
    rulesOrDefaultsReaders.set(parse, read);
  }
  return read(rules);
}

/** A memoized {@link parseOrDefaults} per parser. */
const rulesOrDefaultsReaders = new WeakMap<object, (rules: JsonObject) => unknown>();

function parseOrDefaults<R>(parse: (rules: JsonObject) => Result<R, string>, rules: JsonObject): R {
  return parse(rules)
    .orElse(() => parse({}))
    .match(
      (value) => value,
      (problem) => {
        throw new Error(`empty rules must always parse: ${problem}`);
      },
    );
}
