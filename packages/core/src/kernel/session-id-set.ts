// Session ids are never reused (D-28), so the ids of every session that ever
// left memory stay reserved for the life of the process: that set only grows.
// A Set<string> costs about 85 bytes per canonical UUID; this one packs UUIDs
// into 16 bytes of an open-addressing table (about 17 bytes per slot, 23–45
// bytes per id at its load factors), and keeps any other id form as a string.

const EMPTY = 0;
const USED = 1;
const REMOVED = 2;
const INITIAL_CAPACITY = 1024;
const WORDS = 4;

/** A set of session ids, compact for canonical lowercase UUIDs. Iterates UUIDs first. */
export class SessionIdSet implements Iterable<string> {
  private capacity = INITIAL_CAPACITY;
  private keys = new Uint32Array(INITIAL_CAPACITY * WORDS);
  private states = new Uint8Array(INITIAL_CAPACITY);
  /** Slots in state USED. */
  private used = 0;
  /** Slots in state REMOVED (they lengthen probes until the next rehash). */
  private removed = 0;
  private readonly others = new Set<string>();
  private readonly scratch = new Uint32Array(WORDS);

  get size(): number {
    return this.used + this.others.size;
  }

  /** Bytes held by the table and the ids kept as strings (estimated at 85 bytes each). */
  get approximateBytes(): number {
    return this.keys.byteLength + this.states.byteLength + this.others.size * 85;
  }

  has(id: string): boolean {
    if (!packUuid(id, this.scratch)) return this.others.has(id);
    return this.find(this.scratch) >= 0;
  }

  add(id: string): this {
    if (!packUuid(id, this.scratch)) {
      this.others.add(id);
      return this;
    }
    if (this.find(this.scratch) >= 0) return this;
    if ((this.used + this.removed + 1) * 4 > this.capacity * 3) {
      // Mostly removed slots: rehash in place; otherwise double.
      this.rehash(this.used * 2 < this.capacity ? this.capacity : this.capacity * 2);
    }
    this.insert(this.scratch);
    return this;
  }

  delete(id: string): boolean {
    if (!packUuid(id, this.scratch)) return this.others.delete(id);
    const slot = this.find(this.scratch);
    if (slot < 0) return false;
    this.states[slot] = REMOVED;
    this.used--;
    this.removed++;
    return true;
  }

  *[Symbol.iterator](): Iterator<string> {
    for (let slot = 0; slot < this.capacity; slot++) {
      if (this.states[slot] === USED) yield formatUuid(this.keys, slot * WORDS);
    }
    yield* this.others;
  }

  /** The slot holding `key`, or -1. */
  private find(key: Uint32Array): number {
    const mask = this.capacity - 1;
    for (let slot = hash(key) & mask; ; slot = (slot + 1) & mask) {
      const state = this.states[slot];
      if (state === EMPTY) return -1;
      if (state === USED && this.matches(slot, key)) return slot;
    }
  }

  private matches(slot: number, key: Uint32Array): boolean {
    const at = slot * WORDS;
    return (
      this.keys[at] === key[0] &&
      this.keys[at + 1] === key[1] &&
      this.keys[at + 2] === key[2] &&
      this.keys[at + 3] === key[3]
    );
  }

  /** Puts a key known to be absent into the first free slot of its probe. */
  private insert(key: Uint32Array): void {
    const mask = this.capacity - 1;
    let slot = hash(key) & mask;
    while (this.states[slot] === USED) slot = (slot + 1) & mask;
    if (this.states[slot] === REMOVED) this.removed--;
    this.states[slot] = USED;
    this.keys.set(key, slot * WORDS);
    this.used++;
  }

  private rehash(capacity: number): void {
    const keys = this.keys;
    const states = this.states;
    const old = this.capacity;
    this.capacity = capacity;
    this.keys = new Uint32Array(capacity * WORDS);
    this.states = new Uint8Array(capacity);
    this.used = 0;
    this.removed = 0;
    for (let slot = 0; slot < old; slot++) {
      if (states[slot] === USED) this.insert(keys.subarray(slot * WORDS, slot * WORDS + WORDS));
    }
  }
}

function hash(key: Uint32Array): number {
  // UUID v7 puts a timestamp in the first words and randomness in the last, v4 is random throughout.
  let h = Math.imul((key[0] as number) ^ 0x9e3779b9, 0x85ebca6b);
  h = Math.imul(h ^ (key[1] as number) ^ (h >>> 13), 0xc2b2ae35);
  h = Math.imul(h ^ (key[2] as number) ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (key[3] as number) ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Hyphen positions of the canonical 8-4-4-4-12 form. */
const isHyphen = (index: number) => index === 8 || index === 13 || index === 18 || index === 23;

/** Packs a canonical lowercase UUID into four words; false for any other string. */
function packUuid(id: string, into: Uint32Array): boolean {
  if (id.length !== 36) return false;
  let word = 0;
  let digits = 0;
  for (let index = 0; index < 36; index++) {
    const code = id.charCodeAt(index);
    if (isHyphen(index)) {
      if (code !== 0x2d) return false;
      continue;
    }
    let nibble: number;
    if (code >= 0x30 && code <= 0x39) nibble = code - 0x30;
    else if (code >= 0x61 && code <= 0x66) nibble = code - 0x57;
    else return false;
    word = (word << 4) | nibble;
    digits++;
    if (digits % 8 === 0) {
      into[digits / 8 - 1] = word >>> 0;
      word = 0;
    }
  }
  return true;
}

function formatUuid(keys: Uint32Array, at: number): string {
  const hex = [0, 1, 2, 3]
    .map((offset) => (keys[at + offset] as number).toString(16).padStart(8, "0"))
    .join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
