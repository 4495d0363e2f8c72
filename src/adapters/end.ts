/**
 * The end marker: a worker that ends itself posts its exit code first. Deno's
 * Web Workers have no exit event at all, and Bun's `worker_threads` report 0
 * for `process.exit(1)` under `bun test`; the marker is the code that counts,
 * the runtime's own is the fallback (a crash, a terminate).
 *
 * @module
 */

const END = "@mp/end";

/**
 * Set on a worker's global object by its entry, before the library loads:
 * the library runs as a child there. A Deno worker from `node:worker_threads`
 * is no `WorkerGlobalScope`, so the adapter could not tell otherwise.
 */
export const childFlag: unique symbol = Symbol.for("@mp/multiprocessing.child") as never;

/** What a worker posts just before it ends itself. */
export interface EndMarker {
  [END]: number;
}

/** The marker for `code`. */
export function endMarker(code: number): EndMarker {
  return { [END]: code };
}

/** The exit code a message carries, if it is an end marker. */
export function endCode(data: unknown): number | undefined {
  return typeof data === "object" && data !== null && END in data ? (data as EndMarker)[END] : undefined;
}
