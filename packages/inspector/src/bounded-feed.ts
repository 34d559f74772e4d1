/**
 * A push-to-pull queue for one server stream: producers push, the RPC handler
 * iterates. Bounded, so a browser that stops reading cannot make the server
 * buffer without limit: past `capacity` unread items the feed fails with
 * `overflowError()` and drops what it held.
 */
export interface BoundedFeed<T> extends AsyncIterable<T> {
  /** Queues an item; ignored once the feed has ended. */
  push(item: T): void;
  /**
   * Resolves once the feed has room (or has ended): producers that can wait,
   * such as a history replay, pace themselves on the reader with it.
   */
  waitForRoom(): Promise<void>;
  /** Ends the feed after the queued items. */
  end(): void;
  /** Ends the feed with an error, thrown to the reader after nothing else. */
  fail(error: unknown): void;
  readonly ended: boolean;
}

export function createBoundedFeed<T>(
  capacity: number,
  overflowError: () => unknown,
  signal?: AbortSignal,
): BoundedFeed<T> {
  const queue: T[] = [];
  let ended = false;
  let failure: { readonly error: unknown } | undefined;
  let wake: (() => void) | undefined;
  let roomWaiters: (() => void)[] = [];
  const notify = (): void => {
    const resolve = wake;
    wake = undefined;
    resolve?.();
  };
  const releaseRoomWaiters = (): void => {
    const waiters = roomWaiters;
    roomWaiters = [];
    for (const resolve of waiters) resolve();
  };
  const feed: BoundedFeed<T> = {
    get ended() {
      return ended;
    },
    push(item) {
      if (ended) return;
      if (queue.length >= capacity) {
        feed.fail(overflowError());
        return;
      }
      queue.push(item);
      notify();
    },
    waitForRoom() {
      if (ended || queue.length < capacity) return Promise.resolve();
      return new Promise((resolve) => roomWaiters.push(resolve));
    },
    end() {
      ended = true;
      notify();
      releaseRoomWaiters();
    },
    fail(error) {
      if (ended) return;
      ended = true;
      failure = { error };
      queue.length = 0;
      notify();
      releaseRoomWaiters();
    },
    async *[Symbol.asyncIterator]() {
      while (true) {
        const item = queue.shift();
        if (item !== undefined) {
          if (queue.length < capacity) releaseRoomWaiters();
          yield item;
          continue;
        }
        if (failure !== undefined) throw failure.error;
        if (ended) return;
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
    },
  };
  if (signal?.aborted) feed.end();
  else signal?.addEventListener("abort", () => feed.end(), { once: true });
  return feed;
}
