/**
 * Deno: Web Workers, which start twice as fast here as Deno's
 * `node:worker_threads`. They cannot be unref'd, so a daemon child keeps a
 * Deno program alive until it ends (see the README's support table).
 *
 * @module
 */
import type { Adapter } from "./types.ts";
import { onUncaughtInWebWorker, postEnd, spawnWebWorker, webParentPort } from "./web.ts";

declare const Deno: {
  pid: number;
  exit(code: number): never;
  stderr: { writeSync(bytes: Uint8Array): number };
};

/** The adapter for Deno's Web Workers. */
export function denoAdapter(): Adapter {
  const scope = globalThis as unknown as { WorkerGlobalScope?: abstract new () => unknown };
  const inWorker = typeof scope.WorkerGlobalScope === "function" && globalThis instanceof scope.WorkerGlobalScope;
  const encoder = new TextEncoder();
  return {
    runtime: "deno",
    pid: Deno.pid,
    canUnref: false,
    spawn: spawnWebWorker,
    parent: () => (inWorker ? webParentPort : null),
    exit(code) {
      if (inWorker) postEnd(code);
      // In a worker, Deno.exit() ends only that worker, and at once.
      Deno.exit(code);
    },
    onUncaught: onUncaughtInWebWorker,
    writeError(text) {
      const bytes = encoder.encode(text);
      for (let done = 0; done < bytes.length;) done += Deno.stderr.writeSync(bytes.subarray(done));
    },
  };
}
