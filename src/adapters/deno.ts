/**
 * Deno: Web Workers, which start twice as fast here as Deno's
 * `node:worker_threads`; but they cannot be unref'd, so a daemon (a pool
 * worker, a manager's server, a daemon `Process`) is started on
 * `node:worker_threads`, whose workers can: a program then ends while its
 * daemons run, as on Node and Bun. Both kinds of worker have the same global
 * scope (`postMessage`, message events, `Deno.exit`), so the child side is
 * one.
 *
 * @module
 */
import type * as Threads from "node:worker_threads";
import { childFlag } from "./end.ts";
import { spawnThread } from "./node.ts";
import type { Adapter, SpawnOptions, ThreadHandle } from "./types.ts";
import { HOLD_EARLY_MESSAGES, onUncaughtInWebWorker, postEnd, spawnWebWorker, webParentPort } from "./web.ts";

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

let threads: typeof Threads | undefined;

function nodeLayer(): typeof Threads {
  const node = (globalThis as unknown as { process: { getBuiltinModule(name: string): unknown } }).process;
  return node.getBuiltinModule("node:worker_threads") as typeof Threads;
}

/** A daemon's worker, on `node:worker_threads` (loaded on first use: Deno's Node layer costs start-up time). */
function spawnDetached(url: URL, options: SpawnOptions): ThreadHandle {
  threads ??= nodeLayer();
  // Deno's terminate() does not stop a busy thread here either, and 'exit' fires at once all the same. No heap
  // limit, as for a Web Worker: the same child behaves the same whichever kind of worker it is on.
  return spawnThread(threads, url, { ...options, memoryLimit: undefined }, false);
}

/** The adapter for Deno's Web Workers. */
export function denoAdapter(): Adapter {
  const scope = globalThis as unknown as { WorkerGlobalScope?: abstract new () => unknown };
  const inWorker = (typeof scope.WorkerGlobalScope === "function" && globalThis instanceof scope.WorkerGlobalScope) ||
    (globalThis as Record<symbol, unknown>)[childFlag] === true;
  const encoder = new TextEncoder();
  const exit = inWorker ? markExits() : Deno.exit.bind(Deno);
  return {
    runtime: "deno",
    pid: Deno.pid,
    canUnref: false,
    workerPrelude: HOLD_EARLY_MESSAGES,
    spawn: (url, options) => (options.detached ? spawnDetached(url, options) : spawnWebWorker(url, options)),
    parent: () => (inWorker ? webParentPort : null),
    // In a worker, Deno.exit() ends only that worker, and at once (even one busy in a loop, unlike terminate()).
    exit: (code) => exit(code),
    onUncaught: onUncaughtInWebWorker,
    poolPollsPorts: false,
    // A Web MessagePort made before Deno's Node layer is loaded holds the event loop for good once it has received
    // a message, unref() or not; one made after it does not (Deno 2.9.6: a daemon worker posting once to the main
    // process's port, the program ended in 0.4 s with the layer loaded before the MessageChannel was made, and
    // never with it loaded just after). A pool loads the layer anyway, for its daemon workers (spawnDetached).
    beforeUnrefPort() {
      threads ??= nodeLayer();
    },
    receiveNow(port) {
      threads ??= nodeLayer();
      return threads.receiveMessageOnPort(port as never);
    },
    writeError(text) {
      const bytes = encoder.encode(text);
      for (let done = 0; done < bytes.length;) done += Deno.stderr.writeSync(bytes.subarray(done));
    },
  };
}
