// IPC messages between the soak driver and its server process.

export type ToSoakServer =
  | { readonly type: "sample" }
  | { readonly type: "snapshot"; readonly path: string }
  | { readonly type: "stop" };

export type FromSoakServer =
  | {
      readonly type: "listening";
      /** The gRPC listener (MACP_BIND_ADDR). */
      readonly url: string;
      /** The Connect listener (MACP_HTTP_BIND_ADDR), when on. */
      readonly httpUrl: string | undefined;
    }
  | { readonly type: "error"; readonly message: string }
  | {
      readonly type: "sample";
      /** Resident set size. */
      readonly rssBytes: number;
      /** V8 heap reserved. */
      readonly heapTotalBytes: number;
      /** V8 heap in use after a full collection. */
      readonly heapUsedBytes: number;
      /** Memory outside the V8 heap held by JS objects (Buffers, ArrayBuffers). */
      readonly externalBytes: number;
    }
  | { readonly type: "snapshot"; readonly path: string };
