/**
 * Start methods, as Python's `multiprocessing.context` (the contexts are in
 * `contexts.ts`). A worker
 * always starts fresh and imports the target's module, as Python's `spawn`;
 * `"forkserver"` does the same on a worker started ahead of need, which has
 * already loaded the library. There is no `fork`: a JavaScript heap cannot be
 * forked.
 *
 * @module
 */
import { adapter } from "./adapters/mod.ts";
import { retireSpare } from "./threads.ts";

/**
 * The start methods: `"spawn"` starts a new worker for each process;
 * `"forkserver"` hands each process a spare worker that has already loaded the
 * library, and starts the next spare (on Node and Bun: the spare must not keep
 * the program alive, and a Deno worker cannot be unref'd).
 */
export type StartMethod = "spawn" | "forkserver";

let chosen: StartMethod | null = null;

/** The classes of contexts (`getContext(method).Process`), each with the start method it fixes. */
const contextClasses = new Map<unknown, StartMethod>();

/**
 * Called by `contexts.ts` with each context's `Process` class.
 *
 * @example
 * ```ts
 * import { bindStartMethod } from "./context.ts";
 * class SpawnProcess {}
 * bindStartMethod(SpawnProcess, "spawn");
 * ```
 */
export function bindStartMethod(processClass: unknown, method: StartMethod): void {
  contextClasses.set(processClass, method);
}

/**
 * The start method a context's `Process` class fixes, `undefined` for any other class.
 *
 * @example
 * ```ts
 * import { startMethodOf } from "./context.ts";
 * console.log(startMethodOf(class {})); // undefined
 * ```
 */
export function startMethodOf(processClass: unknown): StartMethod | undefined {
  return contextClasses.get(processClass);
}

/**
 * The start method of a process whose class does not fix one: the one
 * `setStartMethod()` chose, else `"spawn"` (without choosing it, unlike
 * {@linkcode getStartMethod}).
 *
 * @example
 * ```ts
 * import { defaultStartMethod } from "./context.ts";
 * console.log(defaultStartMethod()); // "spawn"
 * ```
 */
export function defaultStartMethod(): StartMethod {
  return chosen ?? "spawn";
}

/**
 * Checks that `method` is a start method available here.
 *
 * @throws {Error} that says why another method is not available.
 */
export function checkStartMethod(method: string): StartMethod {
  if (method === "spawn") return method;
  if (method === "forkserver" && adapter.canUnref) return method;
  if (method === "forkserver") {
    throw new Error(
      `start method 'forkserver' is not available on ${adapter.runtime}: its workers cannot be unref'd, so the spare worker that forkserver keeps waiting would keep the program alive; use 'spawn'`,
    );
  }
  throw new Error(
    `start method '${method}' is not available: workers cannot fork a JavaScript heap; the start methods here are ${
      getAllStartMethods().map((m) => `'${m}'`).join(", ")
    }`,
  );
}

/**
 * The number of logical CPUs, as Python's `cpu_count()`.
 *
 * @example
 * ```ts
 * import { cpuCount } from "@mp/multiprocessing";
 * console.log(cpuCount() >= 1); // true
 * ```
 */
export function cpuCount(): number {
  return navigator.hardwareConcurrency || 1;
}

/**
 * The start method in use: `"spawn"` unless another was set, or `null` when
 * `allowNone` is set and none was chosen yet (as Python).
 *
 * @example
 * ```ts
 * import { getStartMethod } from "@mp/multiprocessing";
 * console.log(getStartMethod()); // "spawn"
 * ```
 */
export function getStartMethod(allowNone = false): StartMethod | null {
  if (chosen === null && !allowNone) chosen = "spawn";
  return chosen;
}

/**
 * The start methods available here: `["spawn", "forkserver"]` on Node and
 * Bun, `["spawn"]` on Deno.
 *
 * @example
 * ```ts
 * import { getAllStartMethods } from "@mp/multiprocessing";
 * console.log(getAllStartMethods()); // ["spawn", "forkserver"] on Node and Bun
 * ```
 */
export function getAllStartMethods(): StartMethod[] {
  return adapter.canUnref ? ["spawn", "forkserver"] : ["spawn"];
}

/**
 * Chooses the start method of every `Process` (and so every `Pool`) whose
 * context does not fix one: once, or again with `force`. Going back to
 * `"spawn"` ends the forkserver's spare worker.
 *
 * @throws {Error} for a method that {@linkcode getAllStartMethods} does not list, or when one was already chosen
 * and `force` is not set.
 *
 * @example
 * ```ts
 * import { Process, setStartMethod } from "@mp/multiprocessing";
 *
 * export function work() {}
 *
 * if (import.meta.main) {
 *   setStartMethod("forkserver"); // on Node and Bun
 *   for (let i = 0; i < 3; i++) {
 *     const p = new Process({ target: work });
 *     p.start(); // the second and third take a worker that has already loaded the library
 *     await p.join();
 *   }
 * }
 * ```
 */
export function setStartMethod(method: string, force = false): void {
  const checked = checkStartMethod(method);
  if (chosen !== null && !force) {
    throw new Error("the start method has already been set (pass force = true to change it)");
  }
  chosen = checked;
  if (checked === "spawn") retireSpare();
}

// The contexts themselves carry every factory of the library, so they live in contexts.ts, above the
// modules they make objects of (pool.ts imports this module); only the type is seen from here.
export type { Context } from "./contexts.ts";
