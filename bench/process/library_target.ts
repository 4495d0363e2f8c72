/**
 * A target module that imports the library, as users' modules do, for
 * bench/process.ts: what a child costs when its target's module loads mod.ts.
 */
import "../../mod.ts";

/** Tells the parent the child is running, through a shared cell. */
export function signal(cell: Int32Array): void {
  Atomics.store(cell, 0, 1);
  Atomics.notify(cell, 0);
}
