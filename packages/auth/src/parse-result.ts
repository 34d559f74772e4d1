/** The outcome of parsing configuration: a value, or a message saying what is wrong. */
export type ParseResult<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: string };

export function parsed<T>(value: T): ParseResult<T> {
  return { ok: true, value };
}

export function parseError<T>(error: string): ParseResult<T> {
  return { ok: false, error };
}
