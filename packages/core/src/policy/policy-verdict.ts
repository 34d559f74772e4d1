import { err, ok, type Result } from "neverthrow";
import { ErrorCode, type MacpError, macpError } from "../errors.js";
import type { JsonObject } from "../json.js";
import type { PolicyDefinition } from "./policy-definition.js";
import { SUPPORTED_POLICY_SCHEMA_VERSIONS } from "./policy-descriptor.js";
import { memoizeByRules } from "./policy-rules.js";

/** What an evaluator concluded. Only `allowed: true` lets a Commitment through (fail closed). */
export interface PolicyVerdict {
  readonly allowed: boolean;
  /** Deny reasons when denied; informational allow reasons otherwise. */
  readonly reasons: readonly string[];
}

export function allowVerdict(reasons: readonly string[] = []): PolicyVerdict {
  return { allowed: true, reasons };
}

export function denyVerdict(reasons: readonly string[]): PolicyVerdict {
  return { allowed: false, reasons };
}

/** Allow iff no deny reason accumulated (modes.md §9.8). */
export function verdictFrom(
  denyReasons: readonly string[],
  allowReasons: readonly string[],
): PolicyVerdict {
  return denyReasons.length > 0 ? denyVerdict(denyReasons) : allowVerdict(allowReasons);
}

/**
 * The frame every evaluator shares (modes.md §9.8): an unsupported schema
 * version or rules that cannot be read as the mode's rules deny outright, so a
 * policy that slipped past registration can never silently allow.
 */
export function evaluateWithRules<R>(
  policy: PolicyDefinition,
  parse: (rules: JsonObject) => Result<R, string>,
  evaluate: (rules: R) => PolicyVerdict,
): PolicyVerdict {
  if (!SUPPORTED_POLICY_SCHEMA_VERSIONS.has(policy.schemaVersion)) {
    return denyVerdict([
      `policy '${policy.policyId}' has unsupported schema_version ${policy.schemaVersion}`,
    ]);
  }
  const rules = memoized(parse)(policy.rules);
  if (rules.isErr()) {
    return denyVerdict([`policy '${policy.policyId}' rules cannot be read: ${rules.error}`]);
  }
  return evaluate(rules.value);
}

const ALLOWED: Result<void, MacpError> = ok(undefined);

/** Each parser, memoized per immutable rules object: a policy's rules are read once. */
const memoizedParsers = new WeakMap<object, (rules: JsonObject) => Result<unknown, string>>();

function memoized<R>(
  parse: (rules: JsonObject) => Result<R, string>,
): (rules: JsonObject) => Result<R, string> {
  let read = memoizedParsers.get(parse);
  if (read === undefined) {
    read = memoizeByRules(parse);
    memoizedParsers.set(parse, read);
  }
  return read as (rules: JsonObject) => Result<R, string>;
}

/** A denial becomes POLICY_DENIED carrying the reasons (sent as `{"reasons": [...]}` details). */
export function verdictToResult(verdict: PolicyVerdict): Result<void, MacpError> {
  return verdict.allowed ? ALLOWED : err(policyDeniedError(verdict));
}

/** The POLICY_DENIED error of a denying verdict. */
export function policyDeniedError(verdict: PolicyVerdict): MacpError {
  return macpError(
    ErrorCode.POLICY_DENIED,
    `commitment denied by policy: ${verdict.reasons.join("; ")}`,
    verdict.reasons,
  );
}
