/** A JSON value, as mode states and policy rules are written. */
export type JsonValue =
  | null
  | boolean
  | number
  | string
  | JsonValue[]
  | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Whether `value` nests arrays and objects more than `maxDepth` levels deep
 * (a scalar is depth 0, `{}` depth 1). Iterative, so it answers for any depth
 * where the recursive walks it guards (copying, schema checks, JSON.stringify)
 * would overflow the stack.
 */
export function nestsDeeperThan(value: JsonValue, maxDepth: number): boolean {
  const pending: [JsonValue, number][] = [[value, 0]];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const [item, depth] = next;
    if (item === null || typeof item !== "object") continue;
    if (depth + 1 > maxDepth) return true;
    for (const child of Array.isArray(item) ? item : Object.values(item)) {
      pending.push([child, depth + 1]);
    }
  }
  return false;
}
