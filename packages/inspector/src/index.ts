// @macp/inspector: a web page for watching a MACP runtime work, and the
// browser-friendly InspectorService (server streams only) it reads from.

export { type BoundedFeed, createBoundedFeed } from "./bounded-feed.js";
export { createInspectorRoutes, type InspectorRoutesOptions } from "./create-inspector-routes.js";
export {
  createInspectorPage,
  INSPECTOR_BUNDLE_DIR,
  type InspectorPageHandler,
  type InspectorPageOptions,
  type PageRequest,
  type PageResponse,
} from "./inspector-page.js";
export {
  type DecodedPayload,
  decodePayload,
  encodePayload,
  payloadSchemaOf,
} from "./payload-schemas.js";
export {
  createRefusalLog,
  type RefusalLog,
  type RefusalLogOptions,
  type RefusalRecord,
} from "./refusal-log.js";
