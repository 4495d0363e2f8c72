/**
 * What a queue does when it is iterated and when it is disposed, written once
 * for the local `Queue` (queues.ts) and the cluster's (cluster/queue.ts): both
 * take items until this process closes the queue, and both dispose by
 * closing and waiting for their background work (`joinThread`).
 *
 * @module
 */

/** The part of a queue that {@linkcode takeUntilClosed} and {@linkcode closeAndJoin} use. */
export interface ClosingQueue<T> {
  /** Takes the next item, waiting for one; rejects once the queue is closed. */
  get(): Promise<T>;
  /** Closes the queue in this process. */
  close(): void;
  /** Resolves once the queue's background work is done, after `close()`. */
  joinThread(): Promise<void>;
}

/**
 * Yields the queue's items until `closed()` says it is closed: a `get` that
 * fails because the queue was closed meanwhile ends the loop; any other
 * failure is thrown.
 *
 * @example
 * ```ts
 * class MyQueue<T> implements ClosingQueue<T> {
 *   // …
 *   [Symbol.asyncIterator]() {
 *     return takeUntilClosed(this, () => this.#closed);
 *   }
 * }
 * ```
 */
export async function* takeUntilClosed<T>(
  queue: ClosingQueue<T>,
  closed: () => boolean,
): AsyncGenerator<T, void, undefined> {
  while (!closed()) {
    try {
      yield await queue.get();
    } catch (error) {
      if (closed()) return;
      throw error;
    }
  }
}

/**
 * `await using`'s end of a queue: closes it, then waits for `joinThread()`.
 *
 * @example
 * ```ts
 * [Symbol.asyncDispose]() {
 *   return closeAndJoin(this);
 * }
 * ```
 */
export function closeAndJoin(queue: ClosingQueue<unknown>): Promise<void> {
  queue.close();
  return queue.joinThread();
}
