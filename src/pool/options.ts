/**
 * What the pool's callers may pass, and the checks on it: the options of
 * `new Pool()`, of each task and each map, and the readers that reject a
 * mistake (a typo, Python's `error_callback`, a chunksize below 1) with the
 * call's name rather than ignore it. Both the local pool and the cluster's
 * (src/cluster/pool.ts) read their callers' options here.
 *
 * @module
 */
import { type Context, cpuCount } from "../context.ts";
import type { Process } from "../process.ts";
import { readWait, type Wait } from "../wait.ts";

/** Options of {@linkcode Pool}, as the keyword arguments of Python's `Pool(...)`. */
export interface PoolOptions {
  /** How many worker processes; `cpuCount()` by default. */
  processes?: number;
  /** Runs once in each worker, with `initargs`, before its first task. */
  // deno-lint-ignore no-explicit-any
  initializer?: ((...args: any[]) => unknown) | string;
  /** Arguments for `initializer`; this library's objects (a Lock, a Queue …) arrive shared. */
  initargs?: readonly unknown[];
  /** A worker is replaced by a fresh one after this many tasks (a map chunk counts as one). */
  maxtasksperchild?: number | null;
  /** The module that exports the task functions and the initializer (`import.meta.url`, a URL or a specifier). */
  module?: string | URL;
  /**
   * Beyond Python: the most heap each worker may use, in MiB. A worker over it
   * rejects its task with `BrokenPoolError` and is replaced. Enforced on Node
   * only (see `ProcessOptions.memoryLimit`).
   */
  memoryLimit?: number;
  /**
   * The context whose `Process` the workers are, as Python's `Pool(context=)`:
   * `getContext("forkserver")` starts them on spare workers that have already
   * loaded the library. By default, the start method in use.
   */
  context?: Context;
}

/**
 * Per-task limits, beyond Python: when one fires, the task rejects (with
 * `TimeoutError`, or with the signal's reason) and, if it is running, its
 * worker is killed and replaced. The time counts from submission, as
 * `get(timeout)` does; a task that has not started yet is simply withdrawn.
 */
export interface TaskOptions {
  /** Milliseconds from submission. */
  timeout?: number;
  /** Aborting it cancels the task. */
  signal?: AbortSignal;
}

/** Options of {@linkcode Pool.applyAsync}. */
export interface ApplyAsyncOptions<R> extends TaskOptions {
  /** Called with the result when the task succeeds. */
  callback?: (result: R) => void;
  /** Called with the error when the task fails. */
  errorCallback?: (error: unknown) => void;
}

/** Options of {@linkcode Pool.map}, {@linkcode Pool.imap} and their kin. */
export interface MapOptions extends TaskOptions {
  /** Items per task; `map` picks Python's default, `imap` uses 1. */
  chunksize?: number;
}

/** Options of {@linkcode Pool.mapAsync} and {@linkcode Pool.starmapAsync}. */
export interface MapAsyncOptions<R> extends MapOptions {
  /** Called with the list of results when every item succeeded. */
  callback?: (results: R[]) => void;
  /** Called with the first error. */
  errorCallback?: (error: unknown) => void;
}

export function readChunksize(value: unknown, what: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1) {
    throw new RangeError(`${what}: chunksize must be an integer >= 1, got ${String(value)}`);
  }
  return value;
}

/** The option names each call takes: any other is a mistake (a typo, Python's `error_callback`), never ignored. */
export const TASK_KEYS = ["timeout", "signal"];
export const APPLY_KEYS = [...TASK_KEYS, "callback", "errorCallback"];
export const MAP_KEYS = [...TASK_KEYS, "chunksize"];
export const MAP_ASYNC_KEYS = [...MAP_KEYS, "callback", "errorCallback"];

/** Checks an options object: an object, only known names, callbacks that are functions. */
export function readOptions<O extends object>(options: unknown, what: string, keys: readonly string[]): O {
  if (options === undefined || options === null) return {} as O;
  if (typeof options !== "object") throw new TypeError(`${what}: options must be an object, got ${typeof options}`);
  for (const key of Object.keys(options)) {
    if (!keys.includes(key)) {
      throw new TypeError(`${what}: unknown option ${JSON.stringify(key)} (it takes ${keys.join(", ")})`);
    }
  }
  for (const key of ["callback", "errorCallback"]) {
    const value = (options as Record<string, unknown>)[key];
    if (value !== undefined && typeof value !== "function") {
      throw new TypeError(`${what}: ${key} must be a function, got ${typeof value}`);
    }
  }
  return options as O;
}

/**
 * The chunksize and options of a map: `(chunksize?, options?)` as Python's
 * `map_async(func, iterable, chunksize, callback, error_callback)`, or the
 * options alone in the place of the chunksize.
 *
 * @throws {TypeError} for a chunksize that is neither a number nor options,
 * options given twice, or an unknown option.
 */
export function readMapOptions<O extends MapOptions>(
  chunksize: unknown,
  options: unknown,
  what: string,
  keys: readonly string[],
): O {
  let read: O;
  if (typeof chunksize === "object" && chunksize !== null) {
    if (options !== undefined) {
      throw new TypeError(`${what}: the options were given twice (in the place of the chunksize, and after it)`);
    }
    read = readOptions<O>(chunksize, what, keys);
  } else if (chunksize === undefined || chunksize === null || typeof chunksize === "number") {
    read = readOptions<O>(options, what, keys);
    if (typeof chunksize === "number") {
      if (read.chunksize !== undefined && read.chunksize !== chunksize) {
        throw new TypeError(`${what}: chunksize was given twice (${chunksize} and { chunksize: ${read.chunksize} })`);
      }
      read = { ...read, chunksize };
    }
  } else {
    throw new TypeError(`${what}: chunksize must be a number or an options object, got ${typeof chunksize}`);
  }
  readChunksize(read.chunksize, what);
  return read;
}

export function readTaskWait(options: TaskOptions | undefined, what: string): Wait | undefined {
  if (options === undefined || (options.timeout === undefined && options.signal === undefined)) return undefined;
  return readWait(options, what);
}

export function isIterable(value: unknown): value is Iterable<unknown> {
  return value !== null && value !== undefined && typeof (value as Iterable<unknown>)[Symbol.iterator] === "function";
}

export function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return value !== null && value !== undefined &&
    typeof (value as AsyncIterable<unknown>)[Symbol.asyncIterator] === "function";
}

/** `new Pool(options)`'s options, checked, with their defaults. */
export interface PoolSettings {
  processes: number;
  initializer: PoolOptions["initializer"];
  initargs: readonly unknown[];
  /** 0 for no limit. */
  maxtasks: number;
  memoryLimit: number | undefined;
  Process: typeof Process;
  module: string | URL | undefined;
}

/**
 * Checks `new Pool(processes | options)`; `Default` is the `Process` class
 * of the start method in use.
 *
 * @throws {RangeError} for a size that is not a whole number of at least 1, or a bad maxtasksperchild.
 * @throws {TypeError} for options that are neither a number nor an object, or initargs that is not an array.
 */
export function readPoolOptions(options: number | PoolOptions | undefined, Default: typeof Process): PoolSettings {
  const given: PoolOptions = typeof options === "number" ? { processes: options } : options ?? {};
  if (typeof given !== "object") {
    throw new TypeError(`new Pool(processes | options): expected a number or an object, got ${typeof options}`);
  }
  const { processes = cpuCount(), initializer, initargs = [], maxtasksperchild } = given;
  readProcesses(processes);
  if (maxtasksperchild !== undefined && maxtasksperchild !== null) {
    if (!Number.isInteger(maxtasksperchild) || maxtasksperchild < 1) {
      throw new RangeError(`new Pool: maxtasksperchild must be an integer >= 1, got ${String(maxtasksperchild)}`);
    }
  }
  if (!Array.isArray(initargs)) throw new TypeError("new Pool: initargs must be an array");
  return {
    processes,
    initializer,
    initargs,
    maxtasks: maxtasksperchild ?? 0,
    memoryLimit: given.memoryLimit,
    Process: given.context?.Process ?? Default,
    module: given.module,
  };
}

/** Checks a pool's number of processes (the local pool's workers, or the cluster's processes to assume). */
export function readProcesses(processes: unknown): number {
  if (typeof processes !== "number" || !Number.isInteger(processes) || processes < 1) {
    throw new RangeError(`new Pool: the number of processes must be an integer >= 1, got ${String(processes)}`);
  }
  return processes;
}
