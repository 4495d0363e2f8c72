/**
 * The error classes that Python's `multiprocessing`, `queue` and `threading`
 * name, so that code can tell conditions apart with `instanceof` as it would
 * with `except`. Misuse (Python's `ValueError`/`AssertionError`) throws plain
 * `Error`, `TypeError` or `RangeError` instead.
 *
 * @module
 */

/**
 * The base of this library's own errors, as Python's `multiprocessing.ProcessError`.
 *
 * @example
 * ```ts
 * import { ProcessError, TimeoutError } from "@mp/multiprocessing";
 * console.log(new TimeoutError("slow") instanceof ProcessError); // true
 * ```
 */
export class ProcessError extends Error {
  override name: string = "ProcessError";
}

/**
 * A wait ran out of time where Python raises `multiprocessing.TimeoutError`
 * (for example `AsyncResult.get(timeout)`).
 *
 * @example
 * ```ts
 * import { TimeoutError } from "@mp/multiprocessing";
 * try { throw new TimeoutError("no result within 10 ms"); } catch (e) { console.log(e instanceof TimeoutError); }
 * ```
 */
export class TimeoutError extends ProcessError {
  override name: string = "TimeoutError";
}

/**
 * A buffer given to `Connection.recvBytesInto` is too short for the message.
 * The whole message is kept in `bytes`.
 *
 * @example
 * ```ts
 * import { BufferTooShort } from "@mp/multiprocessing";
 * const e = new BufferTooShort(new Uint8Array([1, 2, 3]));
 * console.log(e.bytes.length); // 3
 * ```
 */
export class BufferTooShort extends ProcessError {
  override name: string = "BufferTooShort";
  /** The complete message that did not fit. */
  readonly bytes: Uint8Array;
  constructor(bytes: Uint8Array) {
    super(`the message has ${bytes.length} bytes, more than the buffer can hold; it is kept in .bytes`);
    this.bytes = bytes;
  }
}

/**
 * Authentication of a connection failed, as Python's `AuthenticationError`.
 *
 * @example
 * ```ts
 * import { AuthenticationError } from "@mp/multiprocessing";
 * console.log(new AuthenticationError("digest mismatch").name); // "AuthenticationError"
 * ```
 */
export class AuthenticationError extends ProcessError {
  override name: string = "AuthenticationError";
}

/**
 * A pool's worker died while it ran a task (it threw outside a task, called
 * `exit`, was killed or ran out of memory). Python's `Pool` hangs here; this
 * library rejects the affected tasks with this error and replaces the worker.
 *
 * @example
 * ```ts
 * import { BrokenPoolError } from "@mp/multiprocessing";
 * const e = new BrokenPoolError("worker ForkPoolWorker-1 exited with code 1");
 * console.log(e instanceof Error); // true
 * ```
 */
export class BrokenPoolError extends ProcessError {
  override name: string = "BrokenPoolError";
}

/**
 * Nothing more can be received: the other end of the connection is closed
 * and everything it sent has been read (Python's built-in `EOFError`).
 *
 * @example
 * ```ts
 * import { EOFError } from "@mp/multiprocessing";
 * console.log(new EOFError().message); // "the other end of the connection is closed"
 * ```
 */
export class EOFError extends Error {
  override name: string = "EOFError";
  constructor(message = "the other end of the connection is closed", options?: ErrorOptions) {
    super(message, options);
  }
}

/**
 * A non-blocking or timed `get` found the queue empty (Python's `queue.Empty`).
 *
 * @example
 * ```ts
 * import { Empty } from "@mp/multiprocessing";
 * console.log(new Empty().name); // "Empty"
 * ```
 */
export class Empty extends Error {
  override name: string = "Empty";
  constructor(message = "the queue is empty", options?: ErrorOptions) {
    super(message, options);
  }
}

/**
 * A non-blocking or timed `put` found the queue full (Python's `queue.Full`).
 *
 * @example
 * ```ts
 * import { Full } from "@mp/multiprocessing";
 * console.log(new Full().name); // "Full"
 * ```
 */
export class Full extends Error {
  override name: string = "Full";
  constructor(message = "the queue is full", options?: ErrorOptions) {
    super(message, options);
  }
}

/**
 * A barrier was broken (aborted, reset, or a wait timed out) while parties
 * waited on it (Python's `threading.BrokenBarrierError`).
 *
 * @example
 * ```ts
 * import { BrokenBarrierError } from "@mp/multiprocessing";
 * console.log(new BrokenBarrierError().name); // "BrokenBarrierError"
 * ```
 */
export class BrokenBarrierError extends Error {
  override name: string = "BrokenBarrierError";
  constructor(message = "the barrier is broken", options?: ErrorOptions) {
    super(message, options);
  }
}
