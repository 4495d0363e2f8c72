/**
 * The pool's surface, apart from how tasks reach workers: checking a call's
 * arguments, cutting a map into chunks, making its `AsyncResult`, `MapResult`
 * or `IMapIterator`, and wiring the callbacks. A transport implements
 * {@linkcode TaskRoute}: the local `Pool` (its workers over MessagePorts,
 * src/pool/pool.ts) and the cluster's (BullMQ jobs on Redis,
 * src/cluster/pool.ts) share everything here.
 *
 * @module
 */
import type { Wait } from "../wait.ts";
import { type IMapIterator, ImapIterator } from "./imap.ts";
import {
  APPLY_KEYS,
  type ApplyAsyncOptions,
  isAsyncIterable,
  isIterable,
  MAP_ASYNC_KEYS,
  MAP_KEYS,
  type MapAsyncOptions,
  type MapOptions,
  readMapOptions,
  readOptions,
  readTaskWait,
  type TaskOptions,
} from "./options.ts";
import { APPLY, MAP, type Mode, STARMAP } from "./protocol.ts";
import { AsyncResult, MapResult, notifyResult, type Outcome } from "./results.ts";

/** How many chunks an `imap` keeps submitted but not yet consumed, at least. */
const IMAP_AHEAD = 64;

/** How tasks reach workers: what a transport gives the surface. `P` is a task's data, packed for the trip. */
export interface TaskRoute<P> {
  /** Throws when the pool takes no more tasks (`what` names the method). */
  checkRunning(what: string): void;
  /** The id of a task function (or an export's name), sent to workers once. */
  fnId(fn: unknown, what: string): number;
  /** How many processes the work spreads over: Python's default chunksize is four chunks each. */
  processes(): number;
  /** An apply's arguments, packed; throws naming the argument that cannot be sent. */
  packArgs(args: unknown[]): P;
  /**
   * A chunk, `items[start, end)`, packed, the first being the input's item
   * `index`; throws naming the item (by its index in the input) that cannot
   * be sent. A range rather than a slice: a map of numbers then copies its
   * input once, not twice (garbage a 100k-item map made on every call).
   */
  packChunk(items: readonly unknown[], start: number, end: number, index: number, mode: Mode, what: string): P;
  /** Queues a task; its outcome goes to `to` once. */
  submit(fn: number, mode: Mode, packed: P, to: Outcome, wait: Wait | undefined): void;
  /** The pool was closed: an imap reads its input to the end. */
  closed(): boolean;
  /** The pool was terminated: an imap stops reading. */
  terminated(): boolean;
  /** An imap starts or stops reading its input. */
  reading(feed: () => Promise<void>, on: boolean): void;
}

/** Gives a pool its route: called once, in the pool's constructor. */
export let attachRoute: <P>(calls: PoolCalls, route: TaskRoute<P>) => void;

/**
 * The calls both pools offer, Python's `Pool` methods that submit work, over
 * a {@linkcode TaskRoute}: `Pool` and the cluster's `ClusterPool` extend it.
 *
 * @example
 * ```ts
 * import { Pool } from "@mp/multiprocessing";
 *
 * export const square = (x: number) => x * x;
 *
 * if (import.meta.main) {
 *   await using pool = new Pool(2);
 *   console.log(await pool.map(square, [1, 2, 3])); // [1, 4, 9]
 * }
 * ```
 */
export class PoolCalls {
  #route!: TaskRoute<unknown>;

  /** Only a pool (`Pool`, the cluster's `ClusterPool`) makes one, and gives it its route. */
  protected constructor() {}

  static {
    attachRoute = (calls, route) => void (calls.#route = route as TaskRoute<unknown>);
  }

  /**
   * Runs `fn(...args)` in a worker and resolves to its result.
   *
   * @throws {Error} after `close()` or `terminate()`.
   * @throws {TypeError} for a target that is not a function or an export's name,
   * or arguments that cannot be sent (the message names the argument).
   *
   * @example
   * ```ts
   * const pool = new Pool(2);
   * console.log(await pool.apply(square, [3])); // 9
   * ```
   */
  apply<A extends unknown[], R>(
    fn: ((...args: A) => R) | string,
    args?: A,
    options?: TaskOptions,
  ): Promise<Awaited<R>> {
    return this.applyAsync(fn, args, options).get();
  }

  /**
   * Submits `fn(...args)` and returns its {@linkcode AsyncResult} at once;
   * `callback` or `errorCallback` is called when the task finishes.
   *
   * @throws {Error} after `close()` or `terminate()`.
   * @throws {TypeError} for a bad target or arguments that cannot be sent.
   *
   * @example
   * ```ts
   * const result = pool.applyAsync(square, [4], { callback: (y) => console.log("done", y) });
   * console.log(await result.get()); // 16
   * ```
   */
  applyAsync<A extends unknown[], R>(
    fn: ((...args: A) => R) | string,
    args?: A,
    options?: ApplyAsyncOptions<Awaited<R>>,
  ): AsyncResult<Awaited<R>> {
    return this.#applyAsync(fn, args, options);
  }

  /**
   * Applies `fn` to every item of `iterable` and resolves to the list of
   * results, in order. Items travel in chunks of `chunksize`; by default
   * Python's choice, about four chunks per worker.
   *
   * @throws {TypeError} when `iterable` is not iterable, or an item cannot be sent.
   * @throws {RangeError} for a chunksize below 1.
   *
   * @example
   * ```ts
   * console.log(await pool.map(square, [1, 2, 3])); // [1, 4, 9]
   * ```
   */
  map<T, R>(
    fn: ((item: T) => R) | string,
    iterable: Iterable<T>,
    chunksize?: number | MapOptions,
  ): Promise<Awaited<R>[]> {
    return this.#mapAsync<Awaited<R>>(fn, iterable, chunksize, undefined, MAP, "Pool.map", MAP_KEYS).get();
  }

  /**
   * `map`, returning an {@linkcode AsyncResult} of the whole list at once.
   *
   * @example
   * ```ts
   * const result = pool.mapAsync(square, [1, 2], { callback: (ys) => console.log(ys) });
   * await result.wait();
   * ```
   */
  mapAsync<T, R>(
    fn: ((item: T) => R) | string,
    iterable: Iterable<T>,
    chunksize?: number | null | MapAsyncOptions<Awaited<R>>,
    options?: MapAsyncOptions<Awaited<R>>,
  ): AsyncResult<Awaited<R>[]> {
    return this.#mapAsync(fn, iterable, chunksize, options, MAP, "Pool.mapAsync", MAP_ASYNC_KEYS);
  }

  /**
   * `map` for functions of several arguments: each item is the list of
   * arguments, as Python's `starmap`.
   *
   * @example
   * ```ts
   * export const add = (a: number, b: number) => a + b;
   * console.log(await pool.starmap(add, [[1, 2], [3, 4]])); // [3, 7]
   * ```
   */
  starmap<A extends unknown[], R>(
    fn: ((...args: A) => R) | string,
    iterable: Iterable<A>,
    chunksize?: number | MapOptions,
  ): Promise<Awaited<R>[]> {
    return this.#mapAsync<Awaited<R>>(
      fn,
      iterable,
      chunksize,
      undefined,
      STARMAP,
      "Pool.starmap",
      MAP_KEYS,
    ).get();
  }

  /**
   * `starmap`, returning an {@linkcode AsyncResult} of the whole list at once.
   *
   * @example
   * ```ts
   * const sums = await pool.starmapAsync(add, [[1, 2]]).get(); // [3]
   * ```
   */
  starmapAsync<A extends unknown[], R>(
    fn: ((...args: A) => R) | string,
    iterable: Iterable<A>,
    chunksize?: number | null | MapAsyncOptions<Awaited<R>>,
    options?: MapAsyncOptions<Awaited<R>>,
  ): AsyncResult<Awaited<R>[]> {
    return this.#mapAsync(fn, iterable, chunksize, options, STARMAP, "Pool.starmapAsync", MAP_ASYNC_KEYS);
  }

  /**
   * Applies `fn` to each item and yields the results in order, each as soon
   * as it and those before it are done. The input (any iterable or async
   * iterable, even an endless one) is read lazily, only as far ahead as the
   * pool can use: leaving the loop early stops reading it.
   *
   * @example
   * ```ts
   * for await (const y of pool.imap(square, [1, 2, 3])) console.log(y); // 1 4 9
   * ```
   */
  imap<T, R>(
    fn: ((item: T) => R) | string,
    iterable: Iterable<T> | AsyncIterable<T>,
    chunksize?: number | MapOptions,
  ): IMapIterator<Awaited<R>> {
    return this.#imap(fn, iterable, chunksize, true, "Pool.imap") as IMapIterator<Awaited<R>>;
  }

  /**
   * `imap`, yielding each result as soon as it is done, in any order.
   *
   * @example
   * ```ts
   * const ys = [];
   * for await (const y of pool.imapUnordered(square, [1, 2, 3])) ys.push(y);
   * ```
   */
  imapUnordered<T, R>(
    fn: ((item: T) => R) | string,
    iterable: Iterable<T> | AsyncIterable<T>,
    chunksize?: number | MapOptions,
  ): IMapIterator<Awaited<R>> {
    return this.#imap(fn, iterable, chunksize, false, "Pool.imapUnordered") as IMapIterator<Awaited<R>>;
  }

  /** `Pool.applyAsync`: checks, packs and submits `fn(...args)`. */
  #applyAsync<R>(fn: unknown, args: unknown, options: ApplyAsyncOptions<R> | undefined): AsyncResult<R> {
    const route = this.#route;
    route.checkRunning("applyAsync");
    const id = route.fnId(fn, "Pool.applyAsync");
    if (args !== undefined && !Array.isArray(args)) throw new TypeError("Pool.applyAsync: args must be an array");
    const packed = route.packArgs(args ?? []);
    readOptions(options, "Pool.applyAsync", APPLY_KEYS);
    const wait = readTaskWait(options, "Pool.applyAsync");
    const result = new AsyncResult<R>();
    if (options?.callback || options?.errorCallback) notifyResult(result, options.callback, options.errorCallback);
    route.submit(id, APPLY, packed, result as AsyncResult<unknown>, wait);
    return result;
  }

  /** `Pool.mapAsync` and its kin: the items in chunks (Python's default size), one task each. */
  #mapAsync<R>(
    fn: unknown,
    iterable: unknown,
    chunksize: unknown,
    given: unknown,
    mode: Mode,
    what: string,
    keys: readonly string[],
  ): AsyncResult<R[]> {
    const route = this.#route;
    route.checkRunning(what.slice("Pool.".length));
    const id = route.fnId(fn, what);
    if (!isIterable(iterable)) {
      throw new TypeError(
        `${what}: the items must be iterable (an array, a Set, a generator …), got ${typeof iterable}`,
      );
    }
    const options = readMapOptions<MapAsyncOptions<R>>(chunksize, given, what, keys);
    const wait = readTaskWait(options, what);
    // An array is read in place (each chunk is copied as it is packed, below), not copied first.
    const items: readonly unknown[] = Array.isArray(iterable) ? iterable : Array.from(iterable);
    const size = options.chunksize ?? Math.max(1, Math.ceil(items.length / (route.processes() * 4)));
    const chunks: unknown[] = [];
    for (let start = 0; start < items.length; start += size) {
      const end = Math.min(start + size, items.length);
      if (mode === STARMAP) checkArgumentLists(items, start, end, what);
      chunks.push(route.packChunk(items, start, end, start, mode, what));
    }
    const result = new MapResult<R>(items.length, size, chunks.length, options.callback, options.errorCallback);
    for (let c = 0; c < chunks.length; c++) route.submit(id, mode, chunks[c], result.chunk(c), wait);
    return result;
  }

  /** `Pool.imap` and `Pool.imapUnordered`: see {@linkcode IMapIterator}. */
  #imap(fn: unknown, iterable: unknown, chunksize: unknown, ordered: boolean, what: string): IMapIterator<unknown> {
    const route = this.#route;
    route.checkRunning(what.slice("Pool.".length));
    const id = route.fnId(fn, what);
    if (!isAsyncIterable(iterable) && !isIterable(iterable)) {
      throw new TypeError(`${what}: the items must be iterable or async iterable, got ${typeof iterable}`);
    }
    const options = readMapOptions<MapOptions>(chunksize, undefined, what, MAP_KEYS);
    const wait = readTaskWait(options, what);
    return new ImapIterator(
      {
        ahead: Math.max(IMAP_AHEAD, 2 * route.processes()),
        submit: (offset, items, to) =>
          route.submit(id, MAP, route.packChunk(items, 0, items.length, offset, MAP, what), to, wait),
        closed: () => route.closed(),
        terminated: () => route.terminated(),
        reading: (feed, on) => route.reading(feed, on),
      },
      iterable,
      options.chunksize ?? 1,
      ordered,
      what,
    );
  }
}

/** A starmap's items are each the list of a call's arguments. */
function checkArgumentLists(items: readonly unknown[], start: number, end: number, what: string): void {
  for (let k = start; k < end; k++) {
    if (!Array.isArray(items[k])) {
      throw new TypeError(`${what}: iterable[${k}] must be an array of arguments, got ${typeof items[k]}`);
    }
  }
}
