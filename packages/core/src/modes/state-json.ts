import type { JsonObject, JsonValue } from "../json.js";
import { compareByteOrder } from "../text/byte-order.js";

// Mode state in the reference runtime's JSON shape (modes.md §0.7).

/** Bytes as serde writes a Vec<u8>: an array of integers, not base64. */
export function bytesJson(bytes: Uint8Array): number[] {
  return Array.from(bytes);
}

/**
 * A keyed map as a JSON object with keys in byte order. Object.fromEntries
 * defines own data properties, so a key such as "__proto__" stays a key.
 * JavaScript objects still list integer-like keys ("2", "10") first; use
 * {@link serializeModeState} when the text itself must match.
 */
export function mapJson<V>(
  map: ReadonlyMap<string, V>,
  encode: (value: V) => JsonValue,
): JsonObject {
  const keys = [...map.keys()].sort(compareByteOrder);
  return Object.fromEntries(keys.map((key) => [key, encode(map.get(key) as V)]));
}

const INTEGER_LIKE_KEY = /^(0|[1-9][0-9]*)$/;

/**
 * The built-in mode-state fields the reference runtime holds as f64 (decision
 * `confidence`, task `progress`). serde writes a whole f64 as `1.0` where
 * JavaScript writes `1`; no other numeric field of a built-in state is a float.
 */
const FLOAT_FIELDS: ReadonlySet<string> = new Set(["confidence", "progress"]);

/**
 * The UTF-8 JSON text of an encoded mode state, with every keyed map in byte
 * order. Struct field names are never integer-like, so an object with an
 * integer-like key is a map whose order JavaScript rearranged; only those are
 * re-sorted, which keeps struct fields in declaration order. Whole numbers in
 * the f64 fields are written the serde way (`1.0`). Raw bytes (the passthrough
 * state) are returned as they are.
 */
export function serializeModeState(state: JsonValue | Uint8Array): Uint8Array {
  if (state instanceof Uint8Array) return state;
  return new TextEncoder().encode(stringify(state));
}

function stringify(value: JsonValue): string {
  if (Array.isArray(value)) return `[${value.map(stringify).join(",")}]`;
  if (value !== null && typeof value === "object") {
    let keys = Object.keys(value);
    if (keys.some((key) => INTEGER_LIKE_KEY.test(key))) keys = keys.sort(compareByteOrder);
    const members = keys.map((key) => {
      const member = value[key] as JsonValue;
      const text =
        FLOAT_FIELDS.has(key) && typeof member === "number" ? floatText(member) : stringify(member);
      return `${JSON.stringify(key)}:${text}`;
    });
    return `{${members.join(",")}}`;
  }
  return JSON.stringify(value);
}

function floatText(value: number): string {
  // Beyond 1e16 both forms switch to exponent notation; leave those to JSON.
  return Number.isInteger(value) && Math.abs(value) < 1e16
    ? value.toFixed(1)
    : JSON.stringify(value);
}
