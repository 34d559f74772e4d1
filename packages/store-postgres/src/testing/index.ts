export {
  findPostgresBinaries,
  startThrowawayPostgres,
  type ThrowawayPostgres,
  type ThrowawayPostgresOptions,
} from "./throwaway-postgres.js";
