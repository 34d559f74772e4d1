/**
 * Orders strings as their UTF-8 bytes compare, which is how the reference
 * runtime sorts map keys and names (BTreeMap<String, _>). UTF-8 byte order is
 * code point order; JavaScript's `<` compares UTF-16 code units instead, which
 * differs once characters outside the Basic Multilingual Plane are involved.
 */
export function compareByteOrder(a: string, b: string): number {
  const length = Math.min(a.length, b.length);
  for (let index = 0; index < length; index++) {
    const left = a.codePointAt(index) ?? 0;
    const right = b.codePointAt(index) ?? 0;
    if (left !== right) return left < right ? -1 : 1;
    // A supplementary character spans two code units; skip its low surrogate.
    if (left > 0xffff) index++;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}
