/**
 * SyncManager's `Pool` as our server keeps it: Python's `PoolProxy` methods
 * (`apply`, `map`, `imap`, `apply_async`, …) over this library's own
 * `Pool`, whose workers run in the server's host. A task is a function
 * named by a pickled global, `module.name`: the module a TypeScript client
 * exports it from (its URL); one served pool runs the functions of one
 * module, the first it was given, as a local `Pool({ module })` does. A
 * Python function (`builtins.abs`, `__main__.f`) cannot run here: a
 * `TypeError` says so.
 *
 * `apply_async`/`map_async`/`starmap_async` answer with an `AsyncResult`
 * kept in the server (a proxy of it, as Python's), `imap`/`imap_unordered`
 * with an `Iterator` whose `__next__` raises `StopIteration` at the end.
 * The pool is terminated when its last proxy goes (its client died, or let
 * it go) and when the server shuts down.
 *
 * @module
 */
import { TimeoutError } from "../../errors.ts";
import { PyGlobal } from "../../python/pickle.ts";
import { Pool } from "../../pool/pool.ts";
import type { IMapIterator } from "../../pool/imap.ts";
import { pythonError } from "./protocol.ts";
import { type Call, Referent } from "./referents.ts";
import { itemsOf } from "./sequence_referents.ts";

/** What the local pool's `AsyncResult` offers, whatever its result's type. */
interface LocalResult {
  get(timeout?: number): Promise<unknown>;
  wait(timeout?: number): Promise<boolean>;
  ready(): boolean;
  successful(): boolean;
}

/** Python's seconds (or None) as the local pool's milliseconds. */
function millis(timeout: unknown): number | undefined {
  if (timeout === null || timeout === undefined) return undefined;
  const seconds = Number(timeout);
  if (Number.isNaN(seconds)) throw pythonError("TypeError", "timeout must be a number or None");
  return Math.max(0, seconds * 1_000);
}

/** The local pool's timeout as Python's `multiprocessing.TimeoutError`; other errors as they are. */
function asPython(error: unknown): never {
  if (error instanceof TimeoutError) throw pythonError("multiprocessing.context.TimeoutError", error.message);
  throw error;
}

/**
 * Python's `AsyncResult` of a served pool's `apply_async`/`map_async`: `get(timeout)` (seconds),
 * `wait(timeout)`, `ready()`, `successful()`.
 *
 * @example
 * ```ts
 * // Made by the server for a client's pool.apply_async(...): the client holds a proxy of it.
 * ```
 */
export class ManagedAsyncResult extends Referent {
  protected static override parameters = { get: ["timeout"], wait: ["timeout"] };
  /** As Python's `AsyncResult`'s public methods. */
  static exposed: readonly string[] = ["get", "ready", "successful", "wait"];
  readonly #result: LocalResult;

  /** @param result the local pool's result */
  constructor(result: LocalResult) {
    super();
    this.#result = result;
    // Read by `get`; not an unhandled rejection meanwhile.
    result.wait().catch(() => {});
  }
  get(_: Call, timeout: unknown = null): Promise<unknown> {
    return this.#result.get(millis(timeout)).catch(asPython);
  }
  async wait(_: Call, timeout: unknown = null): Promise<null> {
    await this.#result.wait(millis(timeout));
    return null;
  }
  ready(): boolean {
    return this.#result.ready();
  }
  successful(): boolean {
    if (!this.#result.ready()) throw pythonError("ValueError", "result is not ready");
    return this.#result.successful();
  }
  value(): string {
    return this.repr();
  }
  override repr(): string {
    return `<AsyncResult ${this.#result.ready() ? "ready" : "pending"}>`;
  }
}

/** Python's iterator of a served pool's `imap`: `__next__` gives the next result, then raises StopIteration. */
export class ManagedIterator extends Referent {
  /** As Python's `IteratorProxy`. */
  static exposed: readonly string[] = ["__next__"];
  readonly #results: IMapIterator<unknown>;

  /** @param results the local pool's iterator */
  constructor(results: IMapIterator<unknown>) {
    super();
    this.#results = results;
  }
  async __next__(): Promise<unknown> {
    const next = await this.#results.next();
    if (next.done) throw pythonError("StopIteration");
    return next.value;
  }
  value(): string {
    return this.repr();
  }
  override repr(): string {
    return "<Iterator>";
  }
}

/**
 * Python's `multiprocessing.pool.Pool(processes=None)` as our server keeps
 * it (SyncManager's `Pool`, Python's `PoolProxy`): this library's `Pool`,
 * started at the first task with that task's module.
 *
 * @example
 * ```ts
 * // Made by the server for a client's manager.Pool(2); its workers start at the first task.
 * ```
 */
export class ManagedPool extends Referent {
  protected static override parameters = {
    apply: ["func", "args", "kwds"],
    apply_async: ["func", "args", "kwds", "callback", "error_callback"],
    map: ["func", "iterable", "chunksize"],
    map_async: ["func", "iterable", "chunksize", "callback", "error_callback"],
    starmap: ["func", "iterable", "chunksize"],
    starmap_async: ["func", "iterable", "chunksize", "callback", "error_callback"],
    imap: ["func", "iterable", "chunksize"],
    imap_unordered: ["func", "iterable", "chunksize"],
  };
  /** As Python's `PoolProxy`. */
  static exposed: readonly string[] = [
    "apply",
    "apply_async",
    "close",
    "imap",
    "imap_unordered",
    "join",
    "map",
    "map_async",
    "starmap",
    "starmap_async",
    "terminate",
  ];
  readonly #processes?: number;
  #pool?: Pool;
  #module?: string;
  #closed = false;

  /** @param processes how many workers (None: the CPU count) @param initializer refused: it cannot come over the wire */
  constructor(processes: unknown = null, initializer: unknown = null) {
    super();
    if (processes !== null && processes !== undefined) {
      if (typeof processes !== "number" || !Number.isInteger(processes) || processes < 1) {
        throw pythonError("ValueError", "Number of processes must be at least 1");
      }
      this.#processes = processes;
    }
    if (initializer !== null && initializer !== undefined) {
      throw pythonError("TypeError", "a served Pool takes no initializer (a callable cannot be run from the wire)");
    }
  }

  /** The local pool for `func`'s module (made at the first task), and the function's name in it. */
  #task(func: unknown): [Pool, string] {
    if (!(func instanceof PyGlobal)) {
      throw pythonError("TypeError", "a served Pool's task is a function exported from a module");
    }
    if (!/^(file|https?|jsr|npm|node|data):/.test(func.module)) {
      throw pythonError("TypeError", `a TypeScript server cannot run the Python function ${func}`);
    }
    if (this.#closed) throw pythonError("ValueError", "Pool not running");
    if (this.#module !== undefined && this.#module !== func.module) {
      throw pythonError(
        "ValueError",
        `a served Pool runs the functions of one module, ${this.#module}; ${func.name} is from ${func.module}`,
      );
    }
    this.#module = func.module;
    this.#pool ??= new Pool({ processes: this.#processes, module: func.module });
    return [this.#pool, func.name];
  }

  #kwds(kwds: unknown): void {
    if (kwds instanceof Map ? kwds.size > 0 : kwds !== null && kwds !== undefined && Object.keys(kwds).length > 0) {
      throw pythonError("TypeError", "a served Pool's tasks take no keyword arguments");
    }
  }

  #callbacks(callback: unknown, errorCallback: unknown): void {
    if ((callback ?? null) !== null || (errorCallback ?? null) !== null) {
      throw pythonError("TypeError", "a served Pool takes no callbacks (a callable cannot be run from the wire)");
    }
  }

  apply(_: Call, func: unknown, args: unknown = [], kwds: unknown = null): Promise<unknown> {
    this.#kwds(kwds);
    const [pool, name] = this.#task(func);
    return pool.apply(name, itemsOf(args, "args"));
  }
  apply_async(
    _: Call,
    func: unknown,
    args: unknown = [],
    kwds: unknown = null,
    callback: unknown = null,
    errorCallback: unknown = null,
  ): ManagedAsyncResult {
    this.#kwds(kwds);
    this.#callbacks(callback, errorCallback);
    const [pool, name] = this.#task(func);
    return new ManagedAsyncResult(pool.applyAsync(name, itemsOf(args, "args")));
  }
  /** A map's task, its items (each an argument list for a starmap) and its chunk size, as the local pool takes them. */
  #mapping(func: unknown, iterable: unknown, chunksize: unknown, star: boolean): [Pool, string, unknown[], number?] {
    const [pool, name] = this.#task(func);
    const items = itemsOf(iterable, "iterable");
    const chunks = chunksize === null || chunksize === undefined ? undefined : Number(chunksize);
    return [pool, name, star ? items.map((args) => itemsOf(args, "args")) : items, chunks];
  }
  map(_: Call, func: unknown, iterable: unknown, chunksize: unknown = null): Promise<unknown[]> {
    const [pool, name, items, chunks] = this.#mapping(func, iterable, chunksize, false);
    return pool.map(name, items, chunks);
  }
  map_async(
    _: Call,
    func: unknown,
    iterable: unknown,
    chunksize: unknown = null,
    callback: unknown = null,
    errorCallback: unknown = null,
  ): ManagedAsyncResult {
    return this.#mapAsync(false, func, iterable, chunksize, callback, errorCallback);
  }
  starmap(_: Call, func: unknown, iterable: unknown, chunksize: unknown = null): Promise<unknown[]> {
    const [pool, name, items, chunks] = this.#mapping(func, iterable, chunksize, true);
    return pool.starmap(name, items as unknown[][], chunks);
  }
  starmap_async(
    _: Call,
    func: unknown,
    iterable: unknown,
    chunksize: unknown = null,
    callback: unknown = null,
    errorCallback: unknown = null,
  ): ManagedAsyncResult {
    return this.#mapAsync(true, func, iterable, chunksize, callback, errorCallback);
  }
  /** `map_async` and `starmap_async`: the same checks, one pool call. */
  #mapAsync(
    star: boolean,
    func: unknown,
    iterable: unknown,
    chunksize: unknown,
    callback: unknown,
    errorCallback: unknown,
  ): ManagedAsyncResult {
    this.#callbacks(callback, errorCallback);
    const [pool, name, items, chunks] = this.#mapping(func, iterable, chunksize, star);
    return new ManagedAsyncResult(
      star ? pool.starmapAsync(name, items as unknown[][], chunks) : pool.mapAsync(name, items, chunks),
    );
  }
  imap(_: Call, func: unknown, iterable: unknown, chunksize: unknown = 1): ManagedIterator {
    const [pool, name, items, chunks] = this.#mapping(func, iterable, chunksize, false);
    return new ManagedIterator(pool.imap(name, items, chunks ?? 1));
  }
  imap_unordered(_: Call, func: unknown, iterable: unknown, chunksize: unknown = 1): ManagedIterator {
    const [pool, name, items, chunks] = this.#mapping(func, iterable, chunksize, false);
    return new ManagedIterator(pool.imapUnordered(name, items, chunks ?? 1));
  }
  close(): void {
    this.#closed = true;
    this.#pool?.close();
  }
  async join(): Promise<void> {
    if (!this.#closed) throw pythonError("ValueError", "Pool is still running");
    await this.#pool?.join();
  }
  async terminate(): Promise<void> {
    this.#closed = true;
    this.#pool?.terminate();
    await this.#pool?.join();
  }
  /** Its last proxy went, or the server shuts down: its workers end. */
  override dispose(): void {
    this.#closed = true;
    this.#pool?.terminate();
  }
  value(): string {
    return this.repr();
  }
  override repr(): string {
    return `<multiprocessing.pool.Pool state=${this.#closed ? "CLOSE" : "RUN"} pool_size=${this.#processes ?? "cpu"}>`;
  }
}
