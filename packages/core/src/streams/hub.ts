import { ErrorCode, type MacpError, macpError } from "../errors.js";
import { MacpStreamError } from "../runtime-api.js";

/** What happens to a subscriber whose queue is full. */
export type LagPolicy = "error" | "end";

/**
 * A bounded, pull-based subscription: the producer pushes, the consumer
 * iterates. A consumer that falls more than `capacity` items behind is ended,
 * with a SUBSCRIBER_LAGGED error or silently, so memory never grows without limit.
 */
export class Subscription<T> implements AsyncIterable<T> {
  private readonly queue: T[] = [];
  private waiter: ((result: IteratorResult<T>) => void) | undefined;
  private roomWaiters: (() => void)[] = [];
  private failWaiter: ((error: unknown) => void) | undefined;
  private ended = false;
  private failure: MacpError | undefined;
  private readonly onClose: () => void;

  constructor(
    private readonly capacity: number,
    private readonly lagPolicy: LagPolicy,
    onClose: () => void,
    signal?: AbortSignal,
  ) {
    let closed = false;
    this.onClose = () => {
      if (closed) return;
      closed = true;
      signal?.removeEventListener("abort", abort);
      onClose();
    };
    const abort = () => this.end();
    if (signal?.aborted) this.end();
    else signal?.addEventListener("abort", abort, { once: true });
  }

  get isEnded(): boolean {
    return this.ended;
  }

  push(item: T): void {
    if (this.ended) return;
    if (this.waiter) {
      const resolve = this.waiter;
      this.waiter = undefined;
      this.failWaiter = undefined;
      resolve({ value: item, done: false });
      return;
    }
    if (this.queue.length >= this.capacity) {
      if (this.lagPolicy === "error") {
        this.fail(
          macpError(
            ErrorCode.SUBSCRIBER_LAGGED,
            `subscriber fell more than ${this.capacity} items behind; reconnect and resynchronise`,
          ),
        );
      } else {
        this.end();
      }
      return;
    }
    this.queue.push(item);
  }

  /** Ends after the queued items are delivered. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.onClose();
    this.wakeIfDrained();
    this.releaseRoomWaiters();
  }

  /** Ends with an error, dropping what is queued. */
  fail(error: MacpError): void {
    if (this.ended && this.failure) return;
    this.failure = error;
    this.queue.length = 0;
    this.ended = true;
    this.onClose();
    this.wakeIfDrained();
    this.releaseRoomWaiters();
  }

  private wakeIfDrained(): void {
    if (this.queue.length > 0) return;
    if (this.failure && this.failWaiter) {
      const reject = this.failWaiter;
      this.waiter = undefined;
      this.failWaiter = undefined;
      reject(new MacpStreamError(this.failure));
    } else if (this.waiter) {
      const resolve = this.waiter;
      this.waiter = undefined;
      this.failWaiter = undefined;
      resolve({ value: undefined, done: true });
    }
  }

  /**
   * Resolves once the consumer has room for another item (or the subscription
   * ended). Producers of bulk data (history replay) pace themselves with it
   * instead of overflowing the queue.
   */
  waitForRoom(): Promise<void> {
    if (this.ended || this.queue.length < this.capacity) return Promise.resolve();
    return new Promise((resolve) => this.roomWaiters.push(resolve));
  }

  private releaseRoomWaiters(): void {
    if (this.roomWaiters.length === 0) return;
    if (!this.ended && this.queue.length >= this.capacity) return;
    const waiters = this.roomWaiters;
    this.roomWaiters = [];
    for (const resolve of waiters) resolve();
  }

  next(): Promise<IteratorResult<T>> {
    const item = this.queue.shift();
    this.releaseRoomWaiters();
    if (item !== undefined) return Promise.resolve({ value: item, done: false });
    if (this.failure) return Promise.reject(new MacpStreamError(this.failure));
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.waiter = resolve;
      this.failWaiter = reject;
    });
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => this.next(),
      return: async () => {
        this.end();
        this.queue.length = 0;
        return { value: undefined, done: true };
      },
    };
  }
}

/** Anything a hub can deliver to. */
export interface Sink<T> {
  push(item: T): void;
  end(): void;
}

/** A broadcast channel with one bounded {@link Subscription} (or custom sink) per consumer. */
export class Hub<T> {
  private readonly subscribers = new Set<Sink<T>>();

  constructor(
    private readonly capacity: number,
    private readonly lagPolicy: LagPolicy,
  ) {}

  get size(): number {
    return this.subscribers.size;
  }

  /** `onClose` runs once when the subscription ends, however it ends. */
  subscribe(
    signal?: AbortSignal,
    initial: readonly T[] = [],
    onClose?: () => void,
  ): Subscription<T> {
    const subscription: Subscription<T> = new Subscription<T>(
      Math.max(this.capacity, initial.length),
      this.lagPolicy,
      () => {
        this.subscribers.delete(subscription);
        onClose?.();
      },
      signal,
    );
    for (const item of initial) subscription.push(item);
    if (!subscription.isEnded) this.subscribers.add(subscription);
    return subscription;
  }

  /** Adds a sink that is not a Subscription; returns the function that removes it. */
  attach(sink: Sink<T>): () => boolean {
    this.subscribers.add(sink);
    return () => this.subscribers.delete(sink);
  }

  publish(item: T): void {
    for (const subscriber of this.subscribers) subscriber.push(item);
  }

  /** Ends every subscription (shutdown). */
  endAll(): void {
    for (const subscriber of [...this.subscribers]) subscriber.end();
  }
}
