/**
 * An immutable list with O(1) amortized append, for mode state that only grows
 * (evaluations, objections, updates). Copying a whole array on every message
 * makes a session's history cost O(n²) to build; here versions share one
 * backing array and each sees only its own prefix of it.
 *
 * Every version is immutable from its holder's view: `append` on the newest
 * version pushes onto the shared backing array, beyond the end any older
 * version can see; `append` on an older version (a branch, e.g. after the
 * session layer kept the old state because a durable append failed) copies
 * its prefix first, so the newer version is never disturbed either.
 */
export class PersistentList<T> implements Iterable<T> {
  /** Shared with other versions; only indices below `length` belong to this one. */
  private readonly items: T[];
  readonly length: number;

  private constructor(items: T[], length: number) {
    this.items = items;
    this.length = length;
  }

  // Appending to an empty list always starts a new array, so one empty instance serves everyone.
  private static readonly EMPTY = new PersistentList<never>(Object.freeze([]) as never[], 0);

  /** The empty list. */
  static empty<T>(): PersistentList<T> {
    return PersistentList.EMPTY;
  }

  /** A list holding a copy of these items. */
  static from<T>(items: Iterable<T>): PersistentList<T> {
    const copy = [...items];
    return copy.length === 0 ? PersistentList.empty() : new PersistentList(copy, copy.length);
  }

  /** A new version with `item` at the end; this one is unchanged. */
  append(item: T): PersistentList<T> {
    const length = this.length;
    let items = this.items;
    if (length === 0) {
      items = [item];
    } else {
      // Someone appended to this version already: branch off with a copy of our prefix.
      if (items.length !== length) items = items.slice(0, length);
      items.push(item);
    }
    return new PersistentList(items, length + 1);
  }

  at(index: number): T | undefined {
    const i = index < 0 ? index + this.length : index;
    return i >= 0 && i < this.length ? this.items[i] : undefined;
  }

  /** A fresh array of the items; the caller may keep or change it. */
  toArray(): T[] {
    return this.items.slice(0, this.length);
  }

  map<U>(project: (item: T, index: number) => U): U[] {
    const out = new Array<U>(this.length);
    for (let i = 0; i < this.length; i++) out[i] = project(this.items[i] as T, i);
    return out;
  }

  filter(keep: (item: T, index: number) => boolean): T[] {
    const out: T[] = [];
    for (let i = 0; i < this.length; i++) {
      const item = this.items[i] as T;
      if (keep(item, i)) out.push(item);
    }
    return out;
  }

  some(test: (item: T, index: number) => boolean): boolean {
    for (let i = 0; i < this.length; i++) if (test(this.items[i] as T, i)) return true;
    return false;
  }

  every(test: (item: T, index: number) => boolean): boolean {
    for (let i = 0; i < this.length; i++) if (!test(this.items[i] as T, i)) return false;
    return true;
  }

  find(test: (item: T, index: number) => boolean): T | undefined {
    for (let i = 0; i < this.length; i++) {
      const item = this.items[i] as T;
      if (test(item, i)) return item;
    }
    return undefined;
  }

  forEach(visit: (item: T, index: number) => void): void {
    for (let i = 0; i < this.length; i++) visit(this.items[i] as T, i);
  }

  *[Symbol.iterator](): Generator<T, undefined, undefined> {
    for (let i = 0; i < this.length; i++) yield this.items[i] as T;
    return undefined;
  }

  /** Serialises like the array it stands for. */
  toJSON(): T[] {
    return this.toArray();
  }
}
