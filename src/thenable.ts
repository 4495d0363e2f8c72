/**
 * `isThenable`: whether a value is a Promise or another thenable. The pool's
 * worker and the manager's server both settle a call once what it returned
 * settles, and must agree on what counts (an object or a function with a
 * callable `then`, as the Promise resolution procedure says).
 *
 * @module
 */

/**
 * Whether `value` has a callable `then`, so that `await` would wait for it.
 *
 * @example
 * ```ts
 * import { isThenable } from "./thenable.ts";
 * console.log(isThenable(Promise.resolve(1)), isThenable({ then: 1 }), isThenable(null)); // true false false
 * ```
 */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (typeof value === "object" && value !== null || typeof value === "function") &&
    typeof (value as { then?: unknown }).then === "function";
}
