import { ok, type Result } from "neverthrow";
import type { MacpError } from "../errors.js";

export type Outcome<T> = Result<T, MacpError>;

/**
 * A value now, or a promise of it when something had to wait (an asynchronous
 * store, a busy session). The in-memory path stays free of promise hops.
 */
export type MaybeAsync<T> = T | Promise<T>;

export const OK_VOID: Outcome<void> = ok(undefined);

export function chain<T, U>(
  value: MaybeAsync<T>,
  next: (value: T) => MaybeAsync<U>,
): MaybeAsync<U> {
  return value instanceof Promise ? value.then(next) : next(value);
}
