import { err, ok, type Result } from "neverthrow";
import { isJsonObject, type JsonObject, type JsonValue } from "../json.js";
import { isDeeplyFrozen } from "./frozen-json.js";

// Typed views of a policy's `rules` object, one per standard mode (modes.md §9.9–§9.13).
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

export type CriticalObjectionAction = "deny" | "finalize_decline" | "hold";

export interface DecisionRules {
  readonly voting: {
    readonly algorithm: string;
    readonly threshold: number;
    readonly quorum: { readonly type: string; readonly value: number };
    /** Voter id → weight; a voter missing from the map weighs 1. */
    readonly weights: ReadonlyMap<string, number>;
  };
  readonly objectionHandling: {
    readonly criticalSeverityVetoes: boolean;
    readonly vetoThreshold: number;
    readonly criticalObjectionAction: CriticalObjectionAction;
  };
  readonly evaluation: {
    readonly minimumConfidence: number;
    readonly requiredBeforeVoting: boolean;
  };
  readonly commitment: CommitmentRules;
}

export interface ProposalRules {
  /** "all_parties" (default), "counterparty", "initiator"; anything else acts as all_parties. */
  readonly acceptance: { readonly criterion: string };
  /** 0 = unlimited. */
  readonly counterProposal: { readonly maxRounds: number };
  readonly rejection: { readonly terminalOnAnyReject: boolean };
  readonly commitment: CommitmentRules;
}

export interface TaskRules {
  readonly assignment: { readonly allowReassignmentOnReject: boolean };
  readonly completion: { readonly requireOutput: boolean };
  readonly commitment: CommitmentRules;
}

export interface QuorumRules {
  /** `value` 0 means "no override of required_approvals". */
  readonly threshold: { readonly type: string; readonly value: number };
  readonly abstention: { readonly countsTowardQuorum: boolean; readonly interpretation: string };
  readonly commitment: CommitmentRules;
}

export interface HandoffRules {
  /** 0 = no implicit accept. */
  readonly acceptance: { readonly implicitAcceptTimeoutMs: number };
  readonly commitment: CommitmentRules;
}

export const DEFAULT_COMMITMENT_RULES: CommitmentRules = {
  authority: "initiator_only",
  designatedRoles: [],
  requireVoteQuorum: false,
  allowDeclineOverApproval: false,
};

/** Reads fields out of a JSON object, collecting type problems instead of stopping at the first. */
class RuleReader {
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

export function parseDecisionRules(rules: JsonObject): Result<DecisionRules, string> {
  const reader = new RuleReader();
  const voting = reader.section(rules, "voting", "");
  const quorum = reader.section(voting, "quorum", "voting.");
  const objections = reader.section(rules, "objection_handling", "");
  const evaluation = reader.section(rules, "evaluation", "");
  return reader.finish<DecisionRules>({
    voting: {
      algorithm: reader.string(voting, "algorithm", "voting.", "none"),
      threshold: reader.number(voting, "threshold", "voting.", 0.5),
      quorum: {
        type: reader.string(quorum, "type", "voting.quorum.", "count"),
        value: reader.number(quorum, "value", "voting.quorum.", 0),
      },
      weights: reader.numberMap(voting, "weights", "voting."),
    },
    objectionHandling: {
      criticalSeverityVetoes: reader.bool(
        objections,
        "critical_severity_vetoes",
        "objection_handling.",
        false,
      ),
      vetoThreshold: reader.unsigned(objections, "veto_threshold", "objection_handling.", 1),
      criticalObjectionAction: reader.oneOf(
        objections,
        "critical_objection_action",
        "objection_handling.",
        ["deny", "finalize_decline", "hold"],
        "deny",
      ),
    },
    evaluation: {
      minimumConfidence: reader.number(evaluation, "minimum_confidence", "evaluation.", 0),
      requiredBeforeVoting: reader.bool(evaluation, "required_before_voting", "evaluation.", false),
    },
    commitment: reader.commitment(rules),
  });
}

export function parseProposalRules(rules: JsonObject): Result<ProposalRules, string> {
  const reader = new RuleReader();
  const acceptance = reader.section(rules, "acceptance", "");
  const counter = reader.section(rules, "counter_proposal", "");
  const rejection = reader.section(rules, "rejection", "");
  return reader.finish<ProposalRules>({
    acceptance: { criterion: reader.string(acceptance, "criterion", "acceptance.", "all_parties") },
    counterProposal: {
      maxRounds: reader.unsigned(counter, "max_rounds", "counter_proposal.", 0),
    },
    rejection: {
      terminalOnAnyReject: reader.bool(rejection, "terminal_on_any_reject", "rejection.", false),
    },
    commitment: reader.commitment(rules),
  });
}

export function parseTaskRules(rules: JsonObject): Result<TaskRules, string> {
  const reader = new RuleReader();
  const assignment = reader.section(rules, "assignment", "");
  const completion = reader.section(rules, "completion", "");
  return reader.finish<TaskRules>({
    assignment: {
      allowReassignmentOnReject: reader.bool(
        assignment,
        "allow_reassignment_on_reject",
        "assignment.",
        false,
      ),
    },
    completion: { requireOutput: reader.bool(completion, "require_output", "completion.", false) },
    commitment: reader.commitment(rules),
  });
}

export function parseQuorumRules(rules: JsonObject): Result<QuorumRules, string> {
  const reader = new RuleReader();
  const threshold = reader.section(rules, "threshold", "");
  const abstention = reader.section(rules, "abstention", "");
  return reader.finish<QuorumRules>({
    threshold: {
      type: reader.string(threshold, "type", "threshold.", "n_of_m"),
      value: reader.number(threshold, "value", "threshold.", 0),
    },
    abstention: {
      countsTowardQuorum: reader.bool(abstention, "counts_toward_quorum", "abstention.", false),
      interpretation: reader.string(abstention, "interpretation", "abstention.", "neutral"),
    },
    commitment: reader.commitment(rules),
  });
}

export function parseHandoffRules(rules: JsonObject): Result<HandoffRules, string> {
  const reader = new RuleReader();
  const acceptance = reader.section(rules, "acceptance", "");
  return reader.finish<HandoffRules>({
    acceptance: {
      implicitAcceptTimeoutMs: reader.unsigned(
        acceptance,
        "implicit_accept_timeout_ms",
        "acceptance.",
        0,
      ),
    },
    commitment: reader.commitment(rules),
  });
}

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
