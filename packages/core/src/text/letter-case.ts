// Case-insensitive matching of protocol keywords (votes, recommendations,
// severities) without allocating converted strings on every message.

/**
 * A closed set of canonical spellings (all upper-case or all lower-case), and
 * the lookup `value.toUpperCase()` / `value.toLowerCase()` in it without
 * allocating a converted string for the spellings senders actually use.
 * Members come back as the set's own strings, so state never keeps a fresh copy.
 */
export class Spellings {
  readonly #canonical: ReadonlyMap<string, string>;
  readonly #upper: boolean;

  constructor(members: readonly string[], letterCase: "upper" | "lower") {
    this.#canonical = new Map(members.map((member) => [member, member]));
    this.#upper = letterCase === "upper";
  }

  has(canonical: string): boolean {
    return this.#canonical.has(canonical);
  }

  /** The member equal to `value` converted to the set's case, or undefined. */
  find(value: string): string | undefined {
    return (
      this.#canonical.get(value) ??
      this.#canonical.get(this.#upper ? value.toUpperCase() : value.toLowerCase())
    );
  }
}

/** `value.toUpperCase() === upper`, without converting ASCII text. */
export function upperCaseEquals(value: string, upper: string): boolean {
  return value === upper || caseFoldEquals(value, upper, true);
}

/** `value.toLowerCase() === lower`, without converting ASCII text. */
export function lowerCaseEquals(value: string, lower: string): boolean {
  return value === lower || caseFoldEquals(value, lower, false);
}

/**
 * Compares ASCII `value` with `target` after converting its letters to upper
 * (or lower) case; any other text is converted in full, since Unicode case
 * mapping can change a string's length.
 */
function caseFoldEquals(value: string, target: string, toUpper: boolean): boolean {
  const length = value.length;
  for (let i = 0; i < length; i++) {
    if (value.charCodeAt(i) > 0x7f) {
      return (toUpper ? value.toUpperCase() : value.toLowerCase()) === target;
    }
  }
  const from = toUpper ? 0x61 : 0x41; // "a" or "A"
  if (length !== target.length) return false;
  for (let i = 0; i < length; i++) {
    let code = value.charCodeAt(i);
    if (code >= from && code < from + 26) code ^= 0x20;
    if (code !== target.charCodeAt(i)) return false;
  }
  return true;
}
