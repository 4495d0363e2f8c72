/**
 * What a submission returns, as CPython's `ApplyResult` and `MapResult`:
 * {@linkcode AsyncResult}, the handle of one task, and `MapResult`, which
 * gathers a map's chunks into one list. Transports (the local pool's workers,
 * the cluster's hosts) settle them through a {@linkcode Sink} or
 * `settleResult`; the user's callbacks run here.
 *
 * @module
 */
import { TimeoutError } from "../errors.ts";
import { readWait, type WaitOptions, within } from "../wait.ts";

/** Receives a task's outcome, once. */
export type Sink = (ok: boolean, value: unknown) => void;

/** Where a task's outcome goes: its own `AsyncResult`, or a sink (a map's chunk, an imap's). */
export type Outcome = AsyncResult<unknown> | Sink;

/** Settles `result` (once: a later call is ignored). */
export let settleResult: (result: AsyncResult<unknown>, ok: boolean, value: unknown) => void;
export let notifyResult: <T>(
  result: AsyncResult<T>,
  callback?: (value: T) => void,
  errorCallback?: (error: unknown) => void,
) => void;

/**
 * The result of a task submitted with `applyAsync`, `mapAsync` or
 * `starmapAsync`, as Python's `AsyncResult`.
 *
 * @example
 * ```ts
 * import { Pool } from "@mp/multiprocessing";
 *
 * export function square(x: number) {
 *   return x * x;
 * }
 *
 * if (import.meta.main) {
 *   await using pool = new Pool(2);
 *   const result = pool.applyAsync(square, [7]);
 *   console.log(await result.get(1000)); // 49
 *   console.log(result.ready(), result.successful()); // true true
 * }
 * ```
 */
export class AsyncResult<T> {
  #state: "pending" | "ok" | "failed" = "pending";
  #value: unknown;
  /** Made when someone waits; settled with the task. */
  #outcome?: PromiseWithResolvers<T>;
  #callback?: (value: T) => void;
  #errorCallback?: (error: unknown) => void;

  static {
    settleResult = (result, ok, value) => {
      result.#state = ok ? "ok" : "failed";
      result.#value = value;
      if (result.#outcome) ok ? result.#outcome.resolve(value) : result.#outcome.reject(value);
      if (ok) call(result.#callback, value);
      else call(result.#errorCallback, value);
    };
    notifyResult = (result, callback, errorCallback) => {
      result.#callback = callback;
      result.#errorCallback = errorCallback;
    };
  }

  /** Whether the task has finished, successfully or not. */
  ready(): boolean {
    return this.#state !== "pending";
  }

  /**
   * Whether the task finished without an error.
   *
   * @throws {Error} when the task has not finished yet.
   */
  successful(): boolean {
    if (this.#state === "pending") {
      throw new Error("AsyncResult.successful(): the result is not ready yet; await wait() first");
    }
    return this.#state === "ok";
  }

  /**
   * Waits until the task finishes or `timeout` ms pass; resolves to whether
   * it finished.
   *
   * @throws {RangeError} for a NaN or negative timeout.
   */
  async wait(timeout?: WaitOptions): Promise<boolean> {
    const wait = readWait(timeout, "AsyncResult.wait");
    return this.#state !== "pending" || await within(this.#promise().catch(() => {}), wait);
  }

  /**
   * The task's result; rejects with the task's error (its class name,
   * message, stack and cause kept) or, after `timeout` ms, with
   * `TimeoutError`. A timeout here does not stop the task.
   */
  get(timeout?: WaitOptions): Promise<T> {
    if (timeout === undefined) {
      if (this.#state === "pending") return this.#promise();
      return this.#state === "ok" ? Promise.resolve(this.#value as T) : Promise.reject(this.#value);
    }
    return this.#getWithin(timeout);
  }

  async #getWithin(timeout: WaitOptions): Promise<T> {
    const wait = readWait(timeout, "AsyncResult.get");
    if (!(await this.wait(wait))) throw new TimeoutError(`AsyncResult.get: no result within ${wait.timeout} ms`);
    return this.get();
  }

  #promise(): Promise<T> {
    return (this.#outcome ??= Promise.withResolvers<T>()).promise;
  }
}

/** Calls a user's callback; an error it throws surfaces as uncaught, as from an event listener. */
function call<A>(callback: ((arg: A) => void) | undefined, arg: A): void {
  if (!callback) return;
  try {
    callback(arg);
  } catch (error) {
    queueMicrotask(() => {
      throw error;
    });
  }
}

/** Delivers an outcome to where it goes. */
export function deliver(to: Outcome, ok: boolean, value: unknown): void {
  if (typeof to === "function") to(ok, value);
  else settleResult(to, ok, value);
}

/**
 * The result of a `mapAsync` or `starmapAsync`, as CPython's `MapResult`:
 * each chunk's values land at their place in one list, which resolves once
 * every chunk has; the first failed chunk rejects the whole.
 */
export class MapResult<R> extends AsyncResult<R[]> {
  /**
   * Made when the first chunk arrives, while the workers run the rest, not
   * before the map's first message: `new Array(100_000)` costs Node's main
   * thread 0.45 ms (16,000 items: 0.015 ms), a quarter of a whole map.
   */
  #out: R[] | undefined;
  readonly #length: number;
  readonly #size: number;
  #left: number;

  /** A map of `length` items in `chunks` chunks of `size`. */
  constructor(
    length: number,
    size: number,
    chunks: number,
    callback?: (results: R[]) => void,
    errorCallback?: (error: unknown) => void,
  ) {
    super();
    notifyResult(this, callback, errorCallback);
    this.#length = length;
    this.#size = size;
    this.#left = chunks;
    if (chunks === 0) settleResult(this as AsyncResult<unknown>, true, []);
  }

  /** Where chunk `c`'s outcome goes. */
  chunk(c: number): Sink {
    return (ok, value) => {
      if (this.ready()) return;
      if (!ok) return settleResult(this as AsyncResult<unknown>, false, value);
      const values = value as R[];
      const out = (this.#out ??= new Array(this.#length));
      for (let i = 0, at = c * this.#size; i < values.length; i++) out[at + i] = values[i];
      if (--this.#left === 0) settleResult(this as AsyncResult<unknown>, true, out);
    };
  }
}
