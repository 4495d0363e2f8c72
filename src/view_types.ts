/**
 * The typed-array and DataView constructors, by the index the bytes carry:
 * the table `pickle.ts` writes a view with and `shared_parking.ts` writes a
 * parked view of a SharedArrayBuffer with, so that both read the same index
 * back to the same type.
 *
 * @module
 */

/**
 * The view constructors; a view's index here is what travels.
 *
 * @example
 * ```ts
 * import { views } from "./view_types.ts";
 * const kind = views.findIndex((type) => new Uint8Array(1) instanceof type); // 1
 * ```
 */
export const views = [
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
  DataView,
] as const;

/**
 * Whether `buffer` is a SharedArrayBuffer (false where the runtime has none).
 *
 * @example
 * ```ts
 * import { isShared } from "./view_types.ts";
 * isShared(new ArrayBuffer(1)); // false
 * ```
 */
export function isShared(buffer: ArrayBufferLike): boolean {
  return typeof SharedArrayBuffer === "function" && buffer instanceof SharedArrayBuffer;
}
