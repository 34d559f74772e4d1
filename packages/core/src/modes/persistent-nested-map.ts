/** One write of a cell; `older` is the write it replaced. */
interface Cell<V> {
  readonly value: V;
  /** The write number that created this cell. */
  readonly write: number;
  readonly older: Cell<V> | undefined;
}

/**
 * The cells of one row, newest write per column. Map subclasses rather than
 * wrappers (here and in {@link Shared}), so a lookup follows fewer pointers.
 */
class Row<K2, V> extends Map<K2, Cell<V>> {
  /** The write that created the row. */
  readonly first: number;

  constructor(first: number) {
    super();
    this.first = first;
  }
}

/** The backing store that versions of one nested map share: its rows. */
class Shared<K1, K2, V> extends Map<K1, Row<K2, V>> {
  /** Writes applied so far; the newest version has seen all of them. */
  writes = 0;
}

/**
 * An immutable two-level map (row key → column key → value) with O(1) amortized
 * {@link setIn}, for mode state such as decision votes (proposal → voter →
 * vote). A map of {@link PersistentMap}s would need a new inner version and a
 * new outer entry for every write; here one write counter versions both levels,
 * so a write costs one cell and versions share one backing store.
 *
 * Every version is immutable from its holder's view, exactly as for
 * {@link PersistentMap}: writes to the newest version are invisible to older
 * ones, and a write to an older version first copies what that version sees.
 * Rows iterate in first-insertion order, and so do the columns of a row.
 */
export class PersistentNestedMap<K1, K2, V> implements ReadonlyMap<K1, ReadonlyMap<K2, V>> {
  private readonly shared: Shared<K1, K2, V> | undefined;
  /** Writes visible to this version. */
  private readonly seen: number;
  /** Rows visible to this version. */
  readonly size: number;

  private constructor(shared: Shared<K1, K2, V> | undefined, seen: number, size: number) {
    this.shared = shared;
    this.seen = seen;
    this.size = size;
  }

  // An empty map has no backing store, so one instance serves everyone.
  private static readonly EMPTY = new PersistentNestedMap<never, never, never>(undefined, 0, 0);

  /** The empty map. */
  static empty<K1, K2, V>(): PersistentNestedMap<K1, K2, V> {
    return PersistentNestedMap.EMPTY;
  }

  /** The value at (row, column), if this version has one. */
  getIn(row: K1, column: K2): V | undefined {
    return this.cell(row, column)?.value;
  }

  hasIn(row: K1, column: K2): boolean {
    return this.cell(row, column) !== undefined;
  }

  /** A new version with (row, column) set to `value`; this one is unchanged. */
  setIn(row: K1, column: K2, value: V): PersistentNestedMap<K1, K2, V> {
    let shared = this.shared;
    if (shared === undefined || shared.writes !== this.seen) shared = this.detach();
    const write = shared.writes++;
    let cells = shared.get(row);
    let size = this.size;
    if (cells === undefined) {
      cells = new Row(write);
      shared.set(row, cells);
      size++;
    }
    cells.set(column, { value, write, older: cells.get(column) });
    return new PersistentNestedMap(shared, shared.writes, size);
  }

  /** A read-only view of one row as this version sees it. */
  get(row: K1): ReadonlyMap<K2, V> | undefined {
    const found = this.row(row);
    return found === undefined ? undefined : new RowView(found, this.seen);
  }

  has(row: K1): boolean {
    return this.row(row) !== undefined;
  }

  forEach(
    visit: (value: ReadonlyMap<K2, V>, key: K1, map: ReadonlyMap<K1, ReadonlyMap<K2, V>>) => void,
    thisArg?: unknown,
  ): void {
    for (const [key, value] of this.entries()) visit.call(thisArg, value, key, this);
  }

  *entries(): Generator<[K1, ReadonlyMap<K2, V>], undefined, undefined> {
    if (this.shared === undefined) return undefined;
    for (const [key, row] of this.shared) {
      if (row.first < this.seen) yield [key, new RowView(row, this.seen)];
    }
    return undefined;
  }

  *keys(): Generator<K1, undefined, undefined> {
    for (const [key] of this.entries()) yield key;
    return undefined;
  }

  *values(): Generator<ReadonlyMap<K2, V>, undefined, undefined> {
    for (const [, value] of this.entries()) yield value;
    return undefined;
  }

  [Symbol.iterator](): Generator<[K1, ReadonlyMap<K2, V>], undefined, undefined> {
    return this.entries();
  }

  /** Serialises like nested plain objects (string keys), for debugging. */
  toJSON(): Record<string, Record<string, V>> {
    const out: Record<string, Record<string, V>> = {};
    for (const [key, row] of this.entries()) {
      const columns: Record<string, V> = {};
      for (const [column, value] of row) defineEntry(columns, String(column), value);
      defineEntry(out, String(key), columns);
    }
    return out;
  }

  /** Every value this version sees, row by row, in insertion order. */
  allValues(): V[] {
    const out: V[] = [];
    if (this.shared === undefined) return out;
    for (const row of this.shared.values()) {
      if (row.first >= this.seen) continue;
      for (const newest of row.values()) {
        const cell = visibleCell(newest, this.seen);
        if (cell !== undefined) out.push(cell.value);
      }
    }
    return out;
  }

  private row(row: K1): Row<K2, V> | undefined {
    const found = this.shared?.get(row);
    return found !== undefined && found.first < this.seen ? found : undefined;
  }

  private cell(row: K1, column: K2): Cell<V> | undefined {
    const cells = this.row(row);
    return cells === undefined ? undefined : visibleCell(cells.get(column), this.seen);
  }

  /** A backing store of its own holding exactly what this version sees. */
  private detach(): Shared<K1, K2, V> {
    const shared = new Shared<K1, K2, V>();
    if (this.size === 0) return shared;
    for (const [key, row] of this.entries()) {
      const cells = new Row<K2, V>(shared.writes);
      shared.set(key, cells);
      for (const [column, value] of row) {
        cells.set(column, { value, write: shared.writes++, older: undefined });
      }
    }
    return shared;
  }
}

/** Sets an own data property, so that a key such as "__proto__" stays a key. */
function defineEntry<V>(target: Record<string, V>, key: string, value: V): void {
  Object.defineProperty(target, key, {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  });
}

/** The write of a cell a version sees: the newest one made before it. */
function visibleCell<V>(newest: Cell<V> | undefined, seen: number): Cell<V> | undefined {
  let cell = newest;
  while (cell !== undefined && cell.write >= seen) cell = cell.older;
  return cell;
}

/** One row of a {@link PersistentNestedMap} version. */
class RowView<K2, V> implements ReadonlyMap<K2, V> {
  constructor(
    private readonly cells: ReadonlyMap<K2, Cell<V>>,
    private readonly seen: number,
  ) {}

  get size(): number {
    let size = 0;
    for (const cell of this.cells.values()) if (visibleCell(cell, this.seen) !== undefined) size++;
    return size;
  }

  get(key: K2): V | undefined {
    return visibleCell(this.cells.get(key), this.seen)?.value;
  }

  has(key: K2): boolean {
    return visibleCell(this.cells.get(key), this.seen) !== undefined;
  }

  forEach(visit: (value: V, key: K2, map: ReadonlyMap<K2, V>) => void, thisArg?: unknown): void {
    for (const [key, value] of this.entries()) visit.call(thisArg, value, key, this);
  }

  *entries(): Generator<[K2, V], undefined, undefined> {
    for (const [key, newest] of this.cells) {
      const cell = visibleCell(newest, this.seen);
      if (cell !== undefined) yield [key, cell.value];
    }
    return undefined;
  }

  *keys(): Generator<K2, undefined, undefined> {
    for (const [key] of this.entries()) yield key;
    return undefined;
  }

  *values(): Generator<V, undefined, undefined> {
    for (const [, value] of this.entries()) yield value;
    return undefined;
  }

  [Symbol.iterator](): Generator<[K2, V], undefined, undefined> {
    return this.entries();
  }
}
