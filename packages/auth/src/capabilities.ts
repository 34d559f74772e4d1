import { type ParseResult, parsed, parseError } from "./parse-result.js";

/**
 * The capability fields shared by static token entries and a JWT's
 * `macp_scopes`, with the reference defaults applied. `allowedModes` is kept
 * as written (`null` when absent) because the two sources read `[]`
 * differently.
 */
export interface Capabilities {
  readonly allowedModes: readonly string[] | null;
  readonly canStartSessions: boolean;
  readonly maxOpenSessions: number | null;
  readonly canManageModeRegistry: boolean;
  readonly isObserver: boolean;
}

/**
 * Reads the snake_case capability fields of `record`; `at` names the record in
 * error messages. `null` counts as absent for the list and the cap; the flags
 * must be booleans when present.
 */
export function readCapabilities(
  record: Readonly<Record<string, unknown>>,
  at: string,
): ParseResult<Capabilities> {
  const modes = record.allowed_modes;
  let allowedModes: string[] | null = null;
  if (modes !== undefined && modes !== null) {
    if (!Array.isArray(modes) || modes.some((mode) => typeof mode !== "string")) {
      return parseError(`${at}.allowed_modes must be an array of strings`);
    }
    allowedModes = modes as string[];
  }

  const cap = record.max_open_sessions;
  let maxOpenSessions: number | null = null;
  if (cap !== undefined && cap !== null) {
    if (typeof cap !== "number" || !Number.isSafeInteger(cap) || cap < 0) {
      return parseError(`${at}.max_open_sessions must be a non-negative integer or null`);
    }
    maxOpenSessions = cap;
  }

  const flag = (name: string, fallback: boolean): boolean | string => {
    const value = record[name];
    if (value === undefined) return fallback;
    return typeof value === "boolean" ? value : `${at}.${name} must be true or false`;
  };
  const canStartSessions = flag("can_start_sessions", true);
  const canManageModeRegistry = flag("can_manage_mode_registry", false);
  const isObserver = flag("is_observer", false);
  for (const value of [canStartSessions, canManageModeRegistry, isObserver]) {
    if (typeof value === "string") return parseError(value);
  }
  return parsed({
    allowedModes,
    canStartSessions: canStartSessions === true,
    maxOpenSessions,
    canManageModeRegistry: canManageModeRegistry === true,
    isObserver: isObserver === true,
  });
}
