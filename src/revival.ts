/**
 * How a shared object is revived in another process: its reviver calls the
 * ordinary constructor inside {@linkcode reviving}, and the constructor takes
 * the received state with {@linkcode adopted} instead of allocating new shared
 * memory. One constructor then serves both sides, subclasses included. The
 * one hand-off of every shared object (locks, Event, Condition, Barrier,
 * Value and Array, queues, Connection, whose `Pipe()` makes its ends the same
 * way, since `new Connection()` alone is refused).
 *
 * @module
 */

let pending: unknown;

/** Runs `make` (a `new X(...)`) so that the constructor it reaches adopts `state`. */
export function reviving<T>(state: unknown, make: () => T): T {
  pending = state;
  try {
    return make();
  } finally {
    pending = undefined;
  }
}

/** In a constructor: the state being revived, or `undefined` for a new object. Call it first. */
export function adopted<S>(): S | undefined {
  const state = pending as S | undefined;
  pending = undefined;
  return state;
}
