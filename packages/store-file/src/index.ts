// @macp/store-file: durable append-only session logs on local disk, the
// embedded default store of the MACP runtime.

export {
  createFileStore,
  type FileStore,
  type FileStoreStats,
  openFileStore,
} from "./file-store.js";
export { FileStoreError, type FileStoreErrorCode } from "./file-store-error.js";
export type { FileStoreOptions } from "./file-store-options.js";
export {
  type FileStoreFileSystem,
  type FileStoreHandle,
  nodeFileSystem,
} from "./file-system.js";
