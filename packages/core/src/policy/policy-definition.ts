import type { JsonObject } from "../json.js";

/** The id every session binds when its SessionStart names no policy. */
export const DEFAULT_POLICY_ID = "policy.default";

/**
 * A governance policy as the runtime keeps it: the descriptor's fields with
 * `rules` parsed. Sessions bind a copy at SessionStart and never look it up again.
 */
export interface PolicyDefinition {
  readonly policyId: string;
  /** A mode id, or "*" for any mode. */
  readonly mode: string;
  readonly description: string;
  /** The parsed rules object. */
  readonly rules: JsonObject;
  readonly schemaVersion: number;
  readonly registeredAtUnixMs: number;
}
