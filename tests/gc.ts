/**
 * Forces a full garbage collection, then lets finalizers run: for the tests
 * of what happens when an object is collected. Bun has `Bun.gc`; V8 (Node,
 * Deno) exposes `gc` once the flag is set, in a context made afterwards.
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

const bun = (globalThis as { Bun?: { gc(force: boolean): void } }).Bun;

let collect: () => void;
if (bun) {
  collect = () => bun.gc(true);
} else {
  setFlagsFromString("--expose-gc");
  collect = runInNewContext("gc");
}

export async function collectGarbage(): Promise<void> {
  collect();
  // Finalization callbacks run in a later task.
  await new Promise((resolve) => setTimeout(resolve, 20));
}
