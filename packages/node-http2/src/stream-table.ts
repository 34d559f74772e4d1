/**
 * A Map from HTTP/2 stream id to stream, kept in two sorted arrays instead of
 * a hash table, so that adding and removing streams never replaces the
 * storage.
 *
 * Why: node:http2 keeps each session's open streams in a `Map`, and a busy
 * connection adds and deletes an entry for every call, so V8 rebuilds
 * ("rehashes") that Map's hash table every few calls. V8 allocates the new
 * table in the generation the old one lives in, and never clears the old one.
 * Once a session's table has reached the old generation (it only has to
 * outlive two minor GCs, e.g. while the connection is idle, or be moved by a
 * full GC), every later table is born old, and every dead one still points at
 * the streams it held. The minor GC takes those pointers as roots: every
 * call's stream and everything reachable from it (the call, its handler's
 * state, its buffers) is copied, then promoted, and only a full GC frees it.
 * A server in that state spends a large part of its CPU in the garbage
 * collector. Here removal moves entries within the same arrays, so the
 * storage stops pointing at a stream once it leaves, and an array gets new
 * storage only when it grows, not every few calls.
 *
 * Lookups are binary searches over the ids of the connection's open streams
 * (at most its SETTINGS_MAX_CONCURRENT_STREAMS, plus streams closing). Ids
 * come in ascending order from each peer; a stream whose id is lower than the
 * newest (the other peer's numbering) is inserted in place. Iteration is in
 * id order, over the entries present when it starts, skipping any deleted
 * meanwhile.
 */
export class StreamTable<Stream> {
  readonly #ids: number[] = [];
  readonly #streams: Stream[] = [];

  get size(): number {
    return this.#ids.length;
  }

  get [Symbol.toStringTag](): string {
    return "StreamTable";
  }

  get(id: number): Stream | undefined {
    const index = this.#indexOf(id);
    return index < 0 ? undefined : this.#streams[index];
  }

  has(id: number): boolean {
    return this.#indexOf(id) >= 0;
  }

  set(id: number, stream: Stream): this {
    const ids = this.#ids;
    const last = ids[ids.length - 1];
    if (last === undefined || id > last) {
      // The usual case: a new stream has the highest id so far.
      ids.push(id);
      this.#streams.push(stream);
      return this;
    }
    const at = this.#insertionPoint(id);
    if (ids[at] === id) {
      this.#streams[at] = stream;
    } else {
      ids.splice(at, 0, id);
      this.#streams.splice(at, 0, stream);
    }
    return this;
  }

  delete(id: number): boolean {
    const index = this.#indexOf(id);
    if (index < 0) return false;
    if (index === 0) {
      // Streams mostly end in the order they began: V8 trims the front in place.
      this.#ids.shift();
      this.#streams.shift();
    } else {
      this.#ids.splice(index, 1);
      this.#streams.splice(index, 1);
    }
    return true;
  }

  clear(): void {
    this.#ids.length = 0;
    this.#streams.length = 0;
  }

  forEach(callback: (stream: Stream, id: number, table: this) => void, thisArg?: unknown): void {
    for (const [id, stream] of this.entries()) callback.call(thisArg, stream, id, this);
  }

  *entries(): IterableIterator<[number, Stream]> {
    // A copy: callbacks (destroying a stream) delete entries while we iterate.
    const ids = [...this.#ids];
    const streams = [...this.#streams];
    for (let index = 0; index < ids.length; index++) {
      const id = ids[index] as number;
      const stream = streams[index] as Stream;
      if (this.#streams[this.#indexOf(id)] === stream) yield [id, stream];
    }
  }

  *keys(): IterableIterator<number> {
    for (const [id] of this.entries()) yield id;
  }

  *values(): IterableIterator<Stream> {
    for (const [, stream] of this.entries()) yield stream;
  }

  [Symbol.iterator](): IterableIterator<[number, Stream]> {
    return this.entries();
  }

  /** The index of `id`, or -1. */
  #indexOf(id: number): number {
    const at = this.#insertionPoint(id);
    return this.#ids[at] === id ? at : -1;
  }

  /** The first index whose id is not below `id` (binary search). */
  #insertionPoint(id: number): number {
    const ids = this.#ids;
    let low = 0;
    let high = ids.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if ((ids[middle] as number) < id) low = middle + 1;
      else high = middle;
    }
    return low;
  }
}
