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
  /** The complete message that did not fit. */
  readonly bytes: Uint8Array;
  /** Creates the error for a message, `bytes`, that did not fit. */
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
  /** Creates the error; the message defaults to "the other end of the connection is closed". */
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
  /** Creates the error; the message defaults to "the queue is empty". */
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
  /** Creates the error; the message defaults to "the queue is full". */
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
  /** Creates the error; the message defaults to "the barrier is broken". */
  constructor(message = "the barrier is broken", options?: ErrorOptions) {
    super(message, options);
  }
}

// On the prototypes, not on each instance: the name then survives minifiers
// (which rename classes) and is no own enumerable property of every error.
for (
  const [type, name] of [
    [ProcessError, "ProcessError"],
    [TimeoutError, "TimeoutError"],
    [BufferTooShort, "BufferTooShort"],
    [AuthenticationError, "AuthenticationError"],
    [BrokenPoolError, "BrokenPoolError"],
    [EOFError, "EOFError"],
    [Empty, "Empty"],
    [Full, "Full"],
    [BrokenBarrierError, "BrokenBarrierError"],
  ] as const
) {
  Object.defineProperty(type.prototype, "name", { value: name, writable: true, configurable: true });
}
