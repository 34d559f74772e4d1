/** One write of a key; `older` is the write it replaced. */
interface Slot<V> {
  readonly value: V;
  /** The write number that created this slot. */
  readonly write: number;
  readonly older: Slot<V> | undefined;
}

/**
 * The backing store that versions of one map share: the newest write of every
 * key. A Map subclass rather than a wrapper, so a lookup follows one pointer fewer.
 */
class Shared<K, V> extends Map<K, Slot<V>> {
  /** Writes applied so far; the newest version has seen all of them. */
  writes = 0;
}

/**
 * An immutable map with O(1) amortized `set`, for mode state keyed by id. Copying
 * a whole Map on every message makes a session's history cost O(n²); here the
 * versions of a map share one backing Map of write chains, and each version
 * sees only the writes made before it was created.
 *
 * Every version is immutable from its holder's view: `set` on the newest version
 * records a new write that older versions ignore; `set` on an older version (a
 * branch, e.g. after the session layer kept the old state because a durable
 * append failed) first copies what that version sees. Iteration follows first
 * insertion, like a Map copied and updated with `set`.
 *
 * A replaced value stays reachable from the chain, so older versions can still
 * read it; maps whose keys are overwritten very often grow accordingly.
 */
export class PersistentMap<K, V> implements ReadonlyMap<K, V> {
  private readonly shared: Shared<K, V> | undefined;
  /** Writes visible to this version. */
  private readonly seen: number;
  readonly size: number;

  private constructor(shared: Shared<K, V> | undefined, seen: number, size: number) {
    this.shared = shared;
    this.seen = seen;
    this.size = size;
  }

  // An empty map has no backing store, so one instance serves everyone.
  private static readonly EMPTY = new PersistentMap<never, never>(undefined, 0, 0);

  /** The empty map. */
  static empty<K, V>(): PersistentMap<K, V> {
    return PersistentMap.EMPTY;
  }

  /** A map holding these entries (later duplicates win, as in `new Map`). */
  static from<K, V>(entries: Iterable<readonly [K, V]>): PersistentMap<K, V> {
    let map = PersistentMap.empty<K, V>();
    for (const [key, value] of entries) map = map.set(key, value);
    return map;
  }

  get(key: K): V | undefined {
    return this.slot(key)?.value;
  }

  has(key: K): boolean {
    return this.slot(key) !== undefined;
  }

  /** A new version with `key` set to `value`; this one is unchanged. */
  set(key: K, value: V): PersistentMap<K, V> {
    let shared = this.shared;
    if (shared === undefined || shared.writes !== this.seen) shared = this.detach();
    const current = shared.get(key);
    shared.set(key, { value, write: shared.writes, older: current });
    shared.writes++;
    return new PersistentMap(
      shared,
      shared.writes,
      current === undefined ? this.size + 1 : this.size,
    );
  }

  forEach(visit: (value: V, key: K, map: ReadonlyMap<K, V>) => void, thisArg?: unknown): void {
    for (const [key, value] of this.entries()) visit.call(thisArg, value, key, this);
  }

  *entries(): Generator<[K, V], undefined, undefined> {
    if (this.shared === undefined) return undefined;
    for (const [key, newest] of this.shared) {
      const slot = this.visible(newest);
      if (slot !== undefined) yield [key, slot.value];
    }
    return undefined;
  }

  *keys(): Generator<K, undefined, undefined> {
    for (const [key] of this.entries()) yield key;
    return undefined;
  }

  *values(): Generator<V, undefined, undefined> {
    for (const [, value] of this.entries()) yield value;
    return undefined;
  }

  [Symbol.iterator](): Generator<[K, V], undefined, undefined> {
    return this.entries();
  }

  /** Serialises like the plain object of its entries (string keys), for debugging. */
  toJSON(): Record<string, V> {
    const out: Record<string, V> = {};
    for (const [key, value] of this.entries()) {
      Object.defineProperty(out, String(key), {
        value,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return out;
  }

  private slot(key: K): Slot<V> | undefined {
    const shared = this.shared;
    if (shared === undefined) return undefined;
    const newest = shared.get(key);
    return newest === undefined ? undefined : this.visible(newest);
  }

  /** The write of a key this version sees: the newest one made before it. */
  private visible(newest: Slot<V>): Slot<V> | undefined {
    let slot: Slot<V> | undefined = newest;
    while (slot !== undefined && slot.write >= this.seen) slot = slot.older;
    return slot;
  }

  /** A backing store of its own holding exactly what this version sees. */
  private detach(): Shared<K, V> {
    const shared = new Shared<K, V>();
    if (this.size === 0) return shared;
    for (const [key, value] of this.entries()) {
      shared.set(key, { value, write: shared.writes++, older: undefined });
    }
    return shared;
  }
}
