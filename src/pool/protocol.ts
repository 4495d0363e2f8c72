/**
 * The wire between a `Pool` and its workers, declared once: every message
 * each side posts over the pool's `MessagePort`, the task code that says how
 * a task's data is applied to its function, and how values are packed for
 * the trip. The pool (`pool.ts`, `member.ts`) and the worker loop
 * (`worker.ts`) both import it; nothing else speaks this wire.
 *
 * A round trip: the pool posts a {@linkcode RunMessage} with a batch of
 * tasks; the worker answers with {@linkcode DoneMessage}s, each holding the
 * results of the next tasks in the order they were sent. After `close()` the
 * pool posts a {@linkcode CloseMessage} to a worker with nothing left to do.
 * A worker whose initializer throws posts an {@linkcode InitErrorMessage}
 * and ends.
 *
 * @module
 */
import { dump, type Dumped, type ReducedError } from "../reduction.ts";
import type { TargetSpec } from "../spawn.ts";

/** How a task's data is applied to its function: `fn(...args)`, `fn(item)` per item, `fn(...item)` per item. */
export const APPLY = 0;
export const MAP = 1;
export const STARMAP = 2;
/** One of {@linkcode APPLY}, {@linkcode MAP}, {@linkcode STARMAP}. */
export type Mode = typeof APPLY | typeof MAP | typeof STARMAP;

/**
 * A task's code: its function's id, its mode, and whether its data needs
 * reviving (`load`), packed into one small integer so that a batch's task
 * list is a flat array of numbers. Packed and unpacked only here.
 */
export function taskCode(fn: number, mode: Mode, reduced: boolean): number {
  return fn * 8 + mode * 2 + (reduced ? 1 : 0);
}

/** The function id in a {@linkcode taskCode}. */
export function codeFunction(code: number): number {
  return code >> 3;
}

/** The mode in a {@linkcode taskCode}. */
export function codeMode(code: number): Mode {
  return ((code >> 1) & 3) as Mode;
}

/** Whether a {@linkcode taskCode}'s data needs reviving. */
export function codeReduced(code: number): boolean {
  return (code & 1) === 1;
}

/**
 * Pool → worker: a batch of tasks. `tasks` holds two numbers a task, its
 * {@linkcode taskCode} and how many entries of `data` are its data (an
 * apply's arguments, or one chunk). Arguments travel flat: a list of lists
 * costs structured clone several times as much. `functions` names the
 * functions this worker has not been told about yet, by id.
 */
export interface RunMessage {
  kind: "run";
  functions?: [number, TargetSpec][];
  tasks: number[];
  data: unknown[];
}

/** Pool → worker, after `close()`: nothing more will come; exit once the tasks held are done. */
export interface CloseMessage {
  kind: "close";
}

/** The one {@linkcode CloseMessage}. */
export const CLOSE_MESSAGE: CloseMessage = { kind: "close" };

/**
 * Worker → pool: the results of the next `results.length` tasks, in order.
 * `failed` and `reduced` index into `results`: a reduced error, and a value
 * to revive with `load`. `ms` is how long the batch took, for the pool's
 * estimate of a task's time.
 */
export interface DoneMessage {
  kind: "done";
  results: unknown[];
  ms: number;
  failed?: number[];
  reduced?: number[];
}

/** Worker → pool: the initializer threw; the worker ends. */
export interface InitErrorMessage {
  kind: "init-error";
  error: ReducedError;
}

/** Everything the pool posts to a worker. */
export type ToWorker = RunMessage | CloseMessage;
/** Everything a worker posts to the pool. */
export type ToPool = DoneMessage | InitErrorMessage;

export const NO_TRANSFER: Transferable[] = [];

/** A value structured clone copies as it is, with nothing to reduce. */
export function isPrimitive(value: unknown): boolean {
  return (typeof value !== "object" || value === null) && typeof value !== "function" && typeof value !== "symbol";
}

/** What a task's args and items may hold beyond data: functions, by reference as Python's pickle sends them. */
export const TASK_VALUES = { functions: true } as const;

/** `dump`, with a fast way out for a list of plain numbers and strings, the common case. */
export function pack(values: readonly unknown[], path: string): Dumped {
  for (let i = 0; i < values.length; i++) if (!isPrimitive(values[i])) return dump(values, path, TASK_VALUES);
  return { data: values, transfer: NO_TRANSFER, reduced: false };
}

/** Chunks at least this long that hold only numbers travel as a Float64Array (see `numeric`). */
export const NUMERIC_CHUNK = 16;

/**
 * A chunk of numbers as a Float64Array, or undefined. Structured clone
 * copies a number array element by element (about 70 ns each on Node); a
 * buffer travels whole: a result's is transferred, and a chunk sent to a
 * worker is in a SharedArrayBuffer (`shared`), so that the pool can send it
 * again to another worker (see `Pool.#balance`), which a transferred buffer,
 * gone from the pool's thread, could not be. Checked and copied in one pass:
 * a check, then the constructor's copy of a slice, cost Node 0.31 ms a
 * 100k-item map on the main thread against 0.17 (Bun 0.12 against 0.08,
 * Deno 0.16 against 0.10), and the slice was 800 kB of garbage a map.
 */
export function numeric(
  items: ArrayLike<unknown>,
  start: number,
  end: number,
  shared: true,
): Float64Array<SharedArrayBuffer> | undefined;
export function numeric(items: ArrayLike<unknown>): Float64Array<ArrayBuffer> | undefined;
export function numeric(
  items: ArrayLike<unknown>,
  start = 0,
  end = items.length,
  shared = false,
): Float64Array | undefined {
  if (end - start < NUMERIC_CHUNK) return undefined;
  const n = end - start;
  const numbers = shared
    ? new Float64Array(new SharedArrayBuffer(n * Float64Array.BYTES_PER_ELEMENT))
    : new Float64Array(n);
  for (let i = start; i < end; i++) {
    const item = items[i];
    if (typeof item !== "number") return undefined;
    numbers[i - start] = item;
  }
  return numbers;
}
