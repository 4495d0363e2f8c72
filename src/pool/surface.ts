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
  MAP_KEYS,
  type MapAsyncOptions,
  type MapOptions,
  readMapOptions,
  readOptions,
  readTaskWait,
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
  /** A chunk of items, packed; throws naming the item (by its index in the input) that cannot be sent. */
  packChunk(items: unknown[], offset: number, mode: Mode, what: string): P;
  /** Queues a task; its outcome goes to `to` once. */
  submit(fn: number, mode: Mode, packed: P, to: Outcome, wait: Wait | undefined): void;
  /** The pool was closed: an imap reads its input to the end. */
  closed(): boolean;
  /** The pool was terminated: an imap stops reading. */
  terminated(): boolean;
  /** An imap starts or stops reading its input. */
  reading(feed: () => Promise<void>, on: boolean): void;
}

/** The calls both pools offer, over a {@linkcode TaskRoute}. */
export class PoolSurface<P> {
  readonly #route: TaskRoute<P>;

  constructor(route: TaskRoute<P>) {
    this.#route = route;
  }

  /** `Pool.applyAsync`: checks, packs and submits `fn(...args)`. */
  applyAsync<R>(fn: unknown, args: unknown, options: ApplyAsyncOptions<R> | undefined): AsyncResult<R> {
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
  mapAsync<R>(
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
    const items = Array.from(iterable);
    const size = options.chunksize ?? Math.max(1, Math.ceil(items.length / (route.processes() * 4)));
    const chunks: P[] = [];
    for (let start = 0; start < items.length; start += size) {
      const chunk = items.slice(start, start + size);
      if (mode === STARMAP) checkArgumentLists(chunk, start, what);
      chunks.push(route.packChunk(chunk, start, mode, what));
    }
    const result = new MapResult<R>(items.length, size, chunks.length, options.callback, options.errorCallback);
    for (let c = 0; c < chunks.length; c++) route.submit(id, mode, chunks[c], result.chunk(c), wait);
    return result;
  }

  /** `Pool.imap` and `Pool.imapUnordered`: see {@linkcode IMapIterator}. */
  imap(fn: unknown, iterable: unknown, chunksize: unknown, ordered: boolean, what: string): IMapIterator<unknown> {
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
        submit: (offset, items, to) => route.submit(id, MAP, route.packChunk(items, offset, MAP, what), to, wait),
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
function checkArgumentLists(items: unknown[], offset: number, what: string): void {
  for (let k = 0; k < items.length; k++) {
    if (!Array.isArray(items[k])) {
      throw new TypeError(`${what}: iterable[${offset + k}] must be an array of arguments, got ${typeof items[k]}`);
    }
  }
}
