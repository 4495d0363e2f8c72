/**
 * A target module that imports nothing, for bench/process.ts: what a child
 * costs when its target's module needs none of the library.
 */

/** Tells the parent the child is running, through a shared cell. */
export function signal(cell: Int32Array): void {
  Atomics.store(cell, 0, 1);
  Atomics.notify(cell, 0);
}
