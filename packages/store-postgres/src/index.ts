export {
  createPostgresStore,
  type PostgresStore,
  type PostgresStoreOptions,
} from "./postgres-store.js";
export { MIGRATIONS, migrate } from "./schema.js";
