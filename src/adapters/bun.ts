/**
 * Bun: Web Workers, which start twice as fast here as Bun's
 * `node:worker_threads` and, unlike Deno's, can be unref'd. Inside a Bun
 * worker, `process.exit()` ends only that worker.
 *
 * @module
 */
import process from "node:process";
import type { Adapter } from "./types.ts";
import { onUncaughtInWebWorker, postEnd, spawnWebWorker, webParentPort } from "./web.ts";

declare const Bun: { isMainThread: boolean };

type Refable = Worker & { ref(): void; unref(): void };

/** The adapter for Bun's Web Workers. */
export function bunAdapter(): Adapter {
  return {
    runtime: "bun",
    pid: process.pid,
    spawn: (url, options) =>
      spawnWebWorker(
        url,
        options,
        (worker, alive) => (alive ? (worker as Refable).ref() : (worker as Refable).unref()),
      ),
    parent: () => (Bun.isMainThread ? null : webParentPort),
    exit(code) {
      if (!Bun.isMainThread) postEnd(code);
      process.exit(code);
    },
    onUncaught: onUncaughtInWebWorker,
    writeError: (text) => void process.stderr.write(text),
  };
}
