import { ConnectError } from "@connectrpc/connect";
import { useEffect, useState } from "preact/hooks";

const RETRY_MS = 2000;

/**
 * Follows a server stream while the component is mounted and `key` is the
 * same: each item goes to `onItem`; when the stream ends or fails, `onReset`
 * runs and it is reopened after a pause. Returns the last error, if any.
 */
export function useStream<T>(
  key: string,
  open: ((signal: AbortSignal) => AsyncIterable<T>) | undefined,
  onItem: (item: T) => void,
  onReset: () => void,
): string | undefined {
  const [error, setError] = useState<string | undefined>(undefined);
  // The stream restarts only when its key changes, not when the callbacks do.
  useEffect(() => {
    if (open === undefined) return;
    const abort = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const run = async (): Promise<void> => {
      onReset();
      try {
        for await (const item of open(abort.signal)) {
          setError(undefined);
          onItem(item);
        }
        if (!abort.signal.aborted) setError("the stream ended; reconnecting");
      } catch (cause) {
        if (abort.signal.aborted) return;
        setError(ConnectError.from(cause).message);
      }
      if (!abort.signal.aborted) timer = setTimeout(run, RETRY_MS);
    };
    void run();
    return () => {
      abort.abort();
      clearTimeout(timer);
    };
  }, [key]);
  return error;
}

/** The current time, refreshed every `everyMs`. */
export function useNow(everyMs = 1000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), everyMs);
    return () => clearInterval(timer);
  }, [everyMs]);
  return now;
}
