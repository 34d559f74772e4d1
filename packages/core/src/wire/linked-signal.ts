/** An AbortSignal that fires when any of its sources does, until disposed. */
export interface LinkedSignal {
  readonly signal: AbortSignal;
  /** Detaches from the sources; call it when the call ends. */
  dispose(): void;
}

/**
 * Links a call's signal to long-lived ones (the server's shutdown signal).
 * Unlike AbortSignal.any, it removes its listeners from the sources when
 * disposed, so a shutdown signal that outlives millions of calls keeps
 * nothing per call (Node 20's AbortSignal.any keeps a reference on each
 * source for every signal it made, for good).
 */
export function linkSignals(...sources: readonly (AbortSignal | undefined)[]): LinkedSignal {
  const controller = new AbortController();
  const present = sources.filter((source): source is AbortSignal => source !== undefined);
  // One listener per source, so the first source to abort gives its reason, as with AbortSignal.any.
  const listeners = present.map((source) => () => {
    dispose();
    controller.abort(source.reason);
  });
  const dispose = (): void => {
    present.forEach((source, index) => {
      const listener = listeners[index];
      if (listener !== undefined) source.removeEventListener("abort", listener);
    });
  };
  for (const [index, source] of present.entries()) {
    if (source.aborted) {
      dispose();
      controller.abort(source.reason);
      break;
    }
    const listener = listeners[index];
    if (listener !== undefined) source.addEventListener("abort", listener, { once: true });
  }
  return { signal: controller.signal, dispose };
}
