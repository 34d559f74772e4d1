// @macp/node-http2: node:http2 server sessions whose per-call bookkeeping
// stays in V8's young generation. Shared by @macp/grpc and @macp/connect/node.

export {
  type Http2SessionSource,
  installStreamTable,
  installStreamTables,
  usesStreamTable,
} from "./install-stream-tables.js";
export { StreamTable } from "./stream-table.js";
