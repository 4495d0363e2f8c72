/**
 * The proxy of SyncManager's `Pool` over a socket: Python's `PoolProxy`
 * with the local `Pool`'s names (`applyAsync`, `mapAsync`, `imapUnordered`,
 * …), async, timeouts in milliseconds. A task goes as a pickled global,
 * `module.name`: a function exported from its module (found as a local
 * `Pool` finds it) for our server, or a `PyGlobal` naming a Python function
 * (`new PyGlobal("math", "sqrt")`) for a Python server.
 *
 * @module
 */
import { PyGlobal } from "../../python/pickle.ts";
import { callerModule, describeTarget } from "../../spawn.ts";
import { RemoteProxy } from "./proxies.ts";
import { remoteCall } from "./proxy_handles.ts";
import { seconds } from "./sync_proxies.ts";

/** A task: a function exported from its module, or a Python function by module and name. */
// deno-lint-ignore no-explicit-any
export type RemoteTask<A extends unknown[] = any[], R = unknown> = ((...args: A) => R) | PyGlobal;

/** The module each pool proxy's tasks are exported from, when its `Pool()` named one. */
const modules = new WeakMap<object, string>();

/**
 * Records the module that exports `pool`'s tasks (`manager.Pool(n, { module })`).
 *
 * @example
 * ```ts
 * tasksFrom(manager.create("Pool", 2), "file:///app/tasks.ts");
 * ```
 */
export function tasksFrom<P extends object>(pool: P, module: string | undefined): P {
  if (module !== undefined) modules.set(pool, module);
  return pool;
}

/**
 * The task as the wire names it: its module is the pool's `module`, else the calling module, as a local
 * `Pool`'s (the function must be exported from it, and the server's workers import it).
 */
function taskOf(pool: object, fn: RemoteTask, what: string): PyGlobal {
  if (fn instanceof PyGlobal) return fn;
  const { module, name } = describeTarget(fn, modules.get(pool) ?? callerModule(), what);
  if (!module || !name) throw new TypeError(`${what}: the task must be a named function exported from its module`);
  return new PyGlobal(module, name);
}

/** A proxy made by a `#PROXY` reply (an AutoProxy of the server's AsyncResult or Iterator). */
type Served = RemoteProxy;

function timeoutOf(timeout: number | undefined, what: string): number | null {
  if (timeout === undefined) return null;
  if (typeof timeout !== "number" || Number.isNaN(timeout) || timeout < 0) {
    throw new RangeError(`${what}: timeout must be a number of milliseconds >= 0, got ${String(timeout)}`);
  }
  return seconds(timeout);
}

/**
 * The result of a remote pool's `applyAsync`/`mapAsync`/`starmapAsync`,
 * kept in the server (Python's `AsyncResult`): the local `AsyncResult`'s
 * methods, async.
 *
 * @example
 * ```ts
 * const result = pool.applyAsync(square, [4]);
 * console.log(await result.get(5_000)); // 16
 * ```
 */
export class RemoteAsyncResult<T> {
  readonly #served: Promise<Served>;

  /**
   * The result of a call made: made by the pool proxy's methods, not by a program.
   *
   * @param served the server's reply: a proxy of its AsyncResult
   */
  constructor(served: Promise<unknown>) {
    this.#served = served as Promise<Served>;
    this.#served.catch(() => {});
  }

  /**
   * The result, waiting at most `timeout` ms.
   *
   * @throws {TimeoutError} when it is not ready by then; the task's error when it failed.
   */
  async get(timeout?: number): Promise<T> {
    const wait = timeoutOf(timeout, "AsyncResult.get");
    return await (await this.#served).callMethod("get", [wait]) as T;
  }

  /** Waits at most `timeout` ms; whether it is ready. */
  async wait(timeout?: number): Promise<boolean> {
    const served = await this.#served;
    await served.callMethod("wait", [timeoutOf(timeout, "AsyncResult.wait")]);
    return await served.callMethod("ready") as boolean;
  }

  /** Whether the task finished. */
  async ready(): Promise<boolean> {
    return await (await this.#served).callMethod("ready") as boolean;
  }

  /** Whether it finished without an error (rejects while it runs, as Python's `ValueError`). */
  async successful(): Promise<boolean> {
    return await (await this.#served).callMethod("successful") as boolean;
  }
}

/** The results of an `imap`, in the server (Python's `IteratorProxy`): `for await` takes them one by one. */
function iterate<T>(served: Promise<unknown>): AsyncGenerator<T, void, undefined> {
  // Read once iterated; not an unhandled rejection if never.
  served.catch(() => {});
  return results(served as Promise<Served>);
}

async function* results<T>(served: Promise<Served>): AsyncGenerator<T, void, undefined> {
  const iterator = await served;
  for (;;) {
    try {
      yield await iterator.callMethod("__next__") as T;
    } catch (error) {
      if ((error as { pythonType?: string }).pythonType === "builtins.StopIteration") return;
      throw error;
    }
  }
}

/**
 * A pool in a remote manager (`manager.Pool(2)`), Python's `PoolProxy`:
 * the local `Pool`'s methods, whose tasks run in the server's host. Our
 * server runs this library's `Pool` there (one module's functions per
 * pool); a Python server runs Python functions named with `PyGlobal`.
 *
 * @example
 * ```ts
 * import { SyncManager } from "@mp/multiprocessing/managers";
 *
 * export const square = (x: number) => x * x;
 *
 * if (import.meta.main) {
 *   await using manager = new SyncManager({ address: ["127.0.0.1", 0] });
 *   await manager.start();
 *   const pool = manager.Pool(2);
 *   console.log(await pool.map(square, [1, 2, 3])); // [1, 4, 9]
 *   await pool.terminate();
 * }
 * ```
 */
export class RemotePoolProxy extends RemoteProxy {
  /** Runs `fn(...args)` in a worker; its result. */
  apply<A extends unknown[], R>(fn: RemoteTask<A, R>, args?: A): Promise<Awaited<R>> {
    return remoteCall(this, "apply", [taskOf(this, fn, "Pool.apply"), args ?? []]) as Promise<Awaited<R>>;
  }

  /** Submits `fn(...args)`; its result, kept in the server. */
  applyAsync<A extends unknown[], R>(fn: RemoteTask<A, R>, args?: A): RemoteAsyncResult<Awaited<R>> {
    return new RemoteAsyncResult(remoteCall(this, "apply_async", [taskOf(this, fn, "Pool.applyAsync"), args ?? []]));
  }

  /** `fn` of each item, in order. */
  map<T, R>(fn: RemoteTask<[T], R>, items: Iterable<T>, chunksize?: number): Promise<Awaited<R>[]> {
    return remoteCall(this, "map", [taskOf(this, fn, "Pool.map"), [...items], chunksize]) as Promise<Awaited<R>[]>;
  }

  /** `map`, its result kept in the server. */
  mapAsync<T, R>(fn: RemoteTask<[T], R>, items: Iterable<T>, chunksize?: number): RemoteAsyncResult<Awaited<R>[]> {
    return new RemoteAsyncResult(
      remoteCall(this, "map_async", [taskOf(this, fn, "Pool.mapAsync"), [...items], chunksize]),
    );
  }

  /** `fn(...args)` of each item's arguments, in order. */
  starmap<A extends unknown[], R>(fn: RemoteTask<A, R>, items: Iterable<A>, chunksize?: number): Promise<Awaited<R>[]> {
    const task = taskOf(this, fn, "Pool.starmap");
    return remoteCall(this, "starmap", [task, [...items], chunksize]) as Promise<Awaited<R>[]>;
  }

  /** `starmap`, its result kept in the server. */
  starmapAsync<A extends unknown[], R>(
    fn: RemoteTask<A, R>,
    items: Iterable<A>,
    chunksize?: number,
  ): RemoteAsyncResult<Awaited<R>[]> {
    const task = taskOf(this, fn, "Pool.starmapAsync");
    return new RemoteAsyncResult(remoteCall(this, "starmap_async", [task, [...items], chunksize]));
  }

  /** `fn` of each item, in order, one at a time: `for await (const y of pool.imap(f, xs))`. */
  imap<T, R>(fn: RemoteTask<[T], R>, items: Iterable<T>, chunksize?: number): AsyncGenerator<Awaited<R>, void> {
    return iterate(remoteCall(this, "imap", [taskOf(this, fn, "Pool.imap"), [...items], chunksize]));
  }

  /** `imap`, in the order the results come. */
  imapUnordered<T, R>(
    fn: RemoteTask<[T], R>,
    items: Iterable<T>,
    chunksize?: number,
  ): AsyncGenerator<Awaited<R>, void> {
    return iterate(remoteCall(this, "imap_unordered", [taskOf(this, fn, "Pool.imapUnordered"), [...items], chunksize]));
  }

  /** Takes no more tasks; the workers end once those submitted are done. */
  async close(): Promise<void> {
    await remoteCall(this, "close", []);
  }

  /** Waits until the workers ended (after `close()` or `terminate()`). */
  async join(): Promise<void> {
    await remoteCall(this, "join", []);
  }

  /** Stops the workers at once; unfinished tasks fail. */
  async terminate(): Promise<void> {
    await remoteCall(this, "terminate", []);
  }
}
