/**
 * Start methods and contexts, as Python's `multiprocessing.context`. Workers
 * always start fresh and import the target's module, so the one start
 * method is `"spawn"`; `fork` and `forkserver` cannot exist for a JavaScript
 * heap.
 *
 * @module
 */
import { activeChildren, currentProcess, parentProcess, Process } from "./process.ts";

/** The start methods this library has: only `"spawn"`. */
export type StartMethod = "spawn";

let chosen: StartMethod | null = null;

function check(method: string): StartMethod {
  if (method === "spawn") return method;
  throw new Error(
    `start method '${method}' is not available: workers cannot fork a JavaScript heap, so the only start method is 'spawn'`,
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
 * The start method in use: `"spawn"`, or `null` when `allowNone` is set and
 * none was chosen yet (as Python).
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
 * The start methods available here: `["spawn"]`.
 *
 * @example
 * ```ts
 * import { getAllStartMethods } from "@mp/multiprocessing";
 * console.log(getAllStartMethods()); // ["spawn"]
 * ```
 */
export function getAllStartMethods(): StartMethod[] {
  return ["spawn"];
}

/**
 * Chooses the start method, once (or again with `force`).
 *
 * @throws {Error} for any method but `"spawn"`, or when one was already chosen and `force` is not set.
 *
 * @example
 * ```ts
 * import { setStartMethod } from "@mp/multiprocessing";
 * setStartMethod("spawn", true);
 * ```
 */
export function setStartMethod(method: string, force = false): void {
  const checked = check(method);
  if (chosen !== null && !force) {
    throw new Error("the start method has already been set (pass force = true to change it)");
  }
  chosen = checked;
}

/** A context: the library's API bound to a start method, as Python's `get_context()` returns. */
export interface Context {
  /** The start method of this context. */
  readonly startMethod: StartMethod;
  /** {@linkcode Process} started with this context's method. */
  readonly Process: typeof Process;
  /** {@linkcode currentProcess} */
  currentProcess(): Process;
  /** {@linkcode parentProcess} */
  parentProcess(): ReturnType<typeof parentProcess>;
  /** {@linkcode activeChildren} */
  activeChildren(): Process[];
  /** {@linkcode cpuCount} */
  cpuCount(): number;
}

const spawnContext: Context = {
  startMethod: "spawn",
  Process,
  currentProcess,
  parentProcess,
  activeChildren,
  cpuCount,
};

/**
 * The context of a start method (the default one when none is named).
 *
 * @throws {Error} for any method but `"spawn"`.
 *
 * @example
 * ```ts
 * import { getContext } from "@mp/multiprocessing";
 * const ctx = getContext("spawn");
 * console.log(ctx.startMethod); // "spawn"
 * ```
 */
export function getContext(method?: string): Context {
  if (method !== undefined) check(method);
  return spawnContext;
}
