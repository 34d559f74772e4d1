import type { Metadata } from "@grpc/grpc-js";

/**
 * The call's metadata as the Fetch `Headers` the authenticate hook reads
 * (`authorization`, `x-macp-token`). Binary (`-bin`) entries carry bytes, not
 * text, and are left out.
 */
export function headersOf(metadata: Metadata): Headers {
  const headers = new Headers();
  const map = metadata.getMap();
  for (const key in map) {
    const value = map[key];
    if (typeof value === "string") headers.set(key, value);
  }
  return headers;
}
