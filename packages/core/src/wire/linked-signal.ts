/** An AbortSignal that fires when any of its sources does, until disposed. */
export interface LinkedSignal {
  readonly signal: AbortSignal;
  /** Detaches from the sources; call it when the call ends. */
  dispose(): void;
}

/**
 * Links a call's signal to long-lived ones (the server's shutdown signal).
 * Unlike AbortSignal.any, it removes its listeners from the sources when
 * disposed, so a shutdown signal that outlives millions of calls does not
 * accumulate one listener per call.
 */
export function linkSignals(...sources: readonly (AbortSignal | undefined)[]): LinkedSignal {
  const controller = new AbortController();
  const present = sources.filter((source): source is AbortSignal => source !== undefined);
  const onAbort = (): void => {
    dispose();
    controller.abort();
  };
  const dispose = (): void => {
    for (const source of present) source.removeEventListener("abort", onAbort);
  };
  for (const source of present) {
    if (source.aborted) {
      dispose();
      controller.abort(source.reason);
      break;
    }
    source.addEventListener("abort", onAbort, { once: true });
  }
  return { signal: controller.signal, dispose };
}
