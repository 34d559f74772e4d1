import type { OutgoingHttpHeaders } from "node:http";

/** The part of a Node response (http, http2 compat) whose trailers are rewritten. */
export interface TrailerWriter {
  addTrailers(headers: OutgoingHttpHeaders): void;
}

/**
 * Makes the `grpc-message` trailer percent-encoded as the gRPC spec says
 * (only bytes outside 0x20–0x7E, and `%`). Connect-ES encodes it with
 * encodeURIComponent, and @grpc/grpc-js, the official SDK's stack, decodes it
 * with decodeURI, which leaves reserved characters escaped: a status message
 * `FORBIDDEN: …` would reach SDK users as `FORBIDDEN%3A …`. Call it on each
 * response before the Connect handler writes to it; startMacpServer does.
 */
export function useSpecGrpcMessageEncoding(response: TrailerWriter): void {
  const addTrailers = response.addTrailers.bind(response);
  response.addTrailers = (headers: OutgoingHttpHeaders) => {
    const message = headers["grpc-message"];
    addTrailers(
      typeof message === "string"
        ? { ...headers, "grpc-message": specPercentEncode(message) }
        : headers,
    );
  };
}

const encoder = new TextEncoder();

function specPercentEncode(uriEncoded: string): string {
  let text: string;
  try {
    text = decodeURIComponent(uriEncoded);
  } catch {
    return uriEncoded;
  }
  let out = "";
  for (const byte of encoder.encode(text)) {
    out +=
      byte >= 0x20 && byte <= 0x7e && byte !== 0x25
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}
