import type { Metadata } from "@grpc/grpc-js";

/**
 * The call's metadata as the Fetch `Headers` the authenticate hook reads
 * (`authorization`, `x-macp-token`). Reads go straight to the metadata:
 * building a real `Headers` costs several µs per call, a measurable share of
 * a Send. The first change copies the entries into a real `Headers`, which
 * then answers everything. Binary (`-bin`) entries carry bytes, not text, and
 * are left out; a repeated key reads as its values joined with ", ".
 */
export function headersOf(metadata: Metadata): Headers {
  return new MetadataHeaders(metadata);
}

class MetadataHeaders implements Headers {
  readonly #metadata: Metadata;
  #copy: Headers | undefined;

  constructor(metadata: Metadata) {
    this.#metadata = metadata;
  }

  get(name: string): string | null {
    if (this.#copy !== undefined) return this.#copy.get(name);
    const key = name.toLowerCase();
    if (key.endsWith("-bin")) return null;
    const values = this.#metadata.get(key);
    if (values.length === 0) return null;
    return values.length === 1 ? String(values[0]) : values.map(String).join(", ");
  }

  has(name: string): boolean {
    return this.get(name) !== null;
  }

  getSetCookie(): string[] {
    return this.#copy?.getSetCookie() ?? [];
  }

  append(name: string, value: string): void {
    this.#writable().append(name, value);
  }

  delete(name: string): void {
    this.#writable().delete(name);
  }

  set(name: string, value: string): void {
    this.#writable().set(name, value);
  }

  forEach(
    callback: (value: string, key: string, parent: Headers) => void,
    thisArg?: unknown,
  ): void {
    for (const [key, value] of this.entries()) callback.call(thisArg, value, key, this);
  }

  entries(): ReturnType<Headers["entries"]> {
    return this.#readable().entries();
  }

  keys(): ReturnType<Headers["keys"]> {
    return this.#readable().keys();
  }

  values(): ReturnType<Headers["values"]> {
    return this.#readable().values();
  }

  [Symbol.iterator](): ReturnType<Headers["entries"]> {
    return this.entries();
  }

  /** A real Headers with the text entries (iteration is rare: build one, do not keep it). */
  #readable(): Headers {
    if (this.#copy !== undefined) return this.#copy;
    const headers = new Headers();
    const map = this.#metadata.getMap();
    for (const key in map) {
      if (key.endsWith("-bin")) continue;
      const value = this.get(key);
      if (value !== null) headers.set(key, value);
    }
    return headers;
  }

  #writable(): Headers {
    this.#copy ??= this.#readable();
    return this.#copy;
  }
}
