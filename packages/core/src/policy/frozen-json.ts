import type { JsonObject, JsonValue } from "../json.js";

/** Values made by {@link frozenJsonCopy}: nothing in them can ever change. */
const deeplyFrozen = new WeakSet<object>();

/**
 * A deep copy of a JSON value, frozen throughout. Policies are bound to sessions
 * by reference for their whole life, so neither the caller that registered them
 * nor anyone reading them may change their rules afterwards.
 */
export function frozenJsonCopy<T extends JsonValue>(value: T): T {
  const frozen = copy(value);
  if (frozen !== null && typeof frozen === "object") deeplyFrozen.add(frozen);
  return frozen as T;
}

/**
 * Whether `value` came from {@link frozenJsonCopy}, so that anything derived from
 * it (parsed policy rules) may be computed once and kept.
 */
export function isDeeplyFrozen(value: object): boolean {
  return deeplyFrozen.has(value);
}

function copy(value: JsonValue): JsonValue {
  if (Array.isArray(value)) return Object.freeze(value.map(copy)) as JsonValue[];
  if (value !== null && typeof value === "object") {
    // Object.fromEntries defines own properties, so a "__proto__" key stays data.
    const entries = Object.entries(value).map(([key, item]) => [key, copy(item)] as const);
    return Object.freeze(Object.fromEntries(entries)) as JsonObject;
  }
  return value;
}
