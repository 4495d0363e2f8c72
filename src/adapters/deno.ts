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
  exit(code?: number): never;
  exitCode: number;
  stderr: { writeSync(bytes: Uint8Array): number };
};

/**
 * In a worker: `Deno.exit()` ends the worker at once, and a Web Worker has no
 * exit event, so the parent would never learn of it. Every exit of the
 * thread (the library's, the user's own `Deno.exit(n)`, and `process.exit(n)`,
 * which Deno routes through `Deno.exit`) posts the end marker first.
 */
function markExits(): (code: number) => never {
  const exit = Deno.exit.bind(Deno);
  Deno.exit = (code?: number): never => {
    const given = code ?? Deno.exitCode ?? 0;
    postEnd(given);
    return exit(given);
  };
  return Deno.exit;
}

/** The adapter for Deno's Web Workers. */
export function denoAdapter(): Adapter {
  const scope = globalThis as unknown as { WorkerGlobalScope?: abstract new () => unknown };
  const inWorker = typeof scope.WorkerGlobalScope === "function" && globalThis instanceof scope.WorkerGlobalScope;
  const encoder = new TextEncoder();
  const exit = inWorker ? markExits() : Deno.exit.bind(Deno);
  return {
    runtime: "deno",
    pid: Deno.pid,
    canUnref: false,
    spawn: spawnWebWorker,
    parent: () => (inWorker ? webParentPort : null),
    // In a worker, Deno.exit() ends only that worker, and at once (even one busy in a loop, unlike terminate()).
    exit: (code) => exit(code),
    onUncaught: onUncaughtInWebWorker,
    writeError(text) {
      const bytes = encoder.encode(text);
      for (let done = 0; done < bytes.length;) done += Deno.stderr.writeSync(bytes.subarray(done));
    },
  };
}
