import type { JsonObject, JsonValue } from "../json.js";

/**
 * A deep copy of a JSON value, frozen throughout. Policies are bound to sessions
 * by reference for their whole life, so neither the caller that registered them
 * nor anyone reading them may change their rules afterwards.
 */
export function frozenJsonCopy<T extends JsonValue>(value: T): T {
  return copy(value) as T;
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
