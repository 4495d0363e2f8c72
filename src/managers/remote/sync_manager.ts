/**
 * Python's `SyncManager` over sockets: a {@linkcode BaseManager} with the
 * typeids every manager has (dict, list, Namespace, Queue, Lock, …), served
 * with Python's semantics, so a Python `SyncManager` client can use ours and
 * ours a Python one's.
 *
 * @module
 */
import { readWait } from "../../wait.ts";
import { BaseManager, registerBuiltins } from "./manager.ts";
import { conditionOn, RemoteConditionProxy, RemoteLockProxy } from "./lock_proxies.ts";
import type {
  RemoteDictProxy,
  RemoteEventProxy,
  RemoteListProxy,
  RemoteNamespaceProxy,
  RemoteQueueProxy,
  RemoteValueProxy,
} from "./proxies.ts";
import { syncRegistry } from "./registry.ts";
import type { RemoteArrayProxy, RemoteBarrierProxy } from "./sync_proxies.ts";
import { type RemotePoolProxy, tasksFrom } from "./pool_proxies.ts";
import { callerModule, moduleSpecifier } from "../../spawn.ts";

/**
 * A remote manager with SyncManager's typeids. Its proxies have the methods
 * of the in-program `Manager()`'s (`dict()` gives a `DictProxy`), async,
 * over the socket. It and the in-program `SyncManager` are both
 * `ManagerBase`s: the same lifecycle and typeid names; only the socket one
 * loads node:net, and its `Lock()`, `Queue()`, … are proxies of objects kept
 * in the server, where the in-program one hands out shared-memory objects.
 *
 * @example
 * ```ts
 * import { SyncManager } from "@mp/multiprocessing/managers";
 * await using manager = new SyncManager({ address: ["127.0.0.1", 0], authkey: "secret" });
 * await manager.start();
 * const d = manager.dict<string, number>();
 * await d.set("x", 1);
 * console.log(await d.get("x")); // 1
 * ```
 */
export class SyncManager extends BaseManager {
  /** A new dict, from `[key, value]` pairs. */
  dict<K = unknown, V = unknown>(entries: Iterable<readonly [K, V]> = []): RemoteDictProxy<K, V> {
    return this.create("dict", [...entries]);
  }
  /** A new list of `items`. */
  list<T = unknown>(items: Iterable<T> = []): RemoteListProxy<T> {
    return this.create("list", [...items]);
  }
  /** A new namespace with `attributes`. */
  Namespace<T extends Record<string, unknown> = Record<string, unknown>>(
    attributes: Partial<T> = {},
  ): RemoteNamespaceProxy<T> {
    return this.create("Namespace", { ...attributes });
  }
  /** A new queue of at most `maxsize` items (0: unbounded). */
  Queue<T = unknown>(maxsize: number = 0): RemoteQueueProxy<T> {
    return this.create("Queue", checkSize(maxsize));
  }
  /** A new joinable queue of at most `maxsize` items. */
  JoinableQueue<T = unknown>(maxsize: number = 0): RemoteQueueProxy<T> {
    return this.create("JoinableQueue", checkSize(maxsize));
  }
  /** A new lock, released by the server if its holder's process dies. */
  Lock(): RemoteLockProxy {
    return this.create("Lock");
  }
  /** A new re-entrant lock. */
  RLock(): RemoteLockProxy {
    return this.create("RLock");
  }
  /** A new semaphore starting at `value`. */
  Semaphore(value: number = 1): RemoteLockProxy {
    return this.create("Semaphore", checkSize(value));
  }
  /** A new bounded semaphore starting at, and bounded by, `value`. */
  BoundedSemaphore(value: number = 1): RemoteLockProxy {
    return this.create("BoundedSemaphore", checkSize(value));
  }
  /** A new event. */
  Event(): RemoteEventProxy {
    return this.create("Event");
  }
  /**
   * A new condition on `lock` (a `Lock()` or `RLock()` of this manager), or on a new RLock.
   *
   * @throws {TypeError} when `lock` is no lock proxy.
   */
  Condition(lock?: RemoteLockProxy): RemoteConditionProxy {
    if (lock !== undefined && (!(lock instanceof RemoteLockProxy) || lock instanceof RemoteConditionProxy)) {
      throw new TypeError("manager.Condition(lock): lock must be a Lock() or RLock() of a remote manager");
    }
    return conditionOn(this.create("Condition", lock), lock);
  }
  /**
   * A new barrier for `parties` parties; `options.timeout` (ms) is the
   * default of each `wait`. No `action`: a function cannot travel to the server.
   *
   * @throws {RangeError} for parties that are not an integer >= 1, or a bad timeout.
   * @throws {TypeError} for an action.
   */
  Barrier(parties: number, options: { timeout?: number; action?: never } = {}): RemoteBarrierProxy {
    if (typeof parties !== "number" || !Number.isInteger(parties) || parties < 1) {
      throw new RangeError(`manager.Barrier(parties): parties must be an integer >= 1, got ${String(parties)}`);
    }
    if (options.action !== undefined) {
      throw new TypeError("manager.Barrier: a remote barrier takes no action (a function cannot travel to the server)");
    }
    const { timeout } = readWait(options.timeout, "manager.Barrier");
    return this.create("Barrier", parties, undefined, timeout === Infinity ? undefined : timeout / 1_000);
  }
  /**
   * A new array of Python's `typecode` (`"i"`, `"d"`, …): `sizeOrValues`
   * zeros, or those values; the server checks each against the typecode.
   */
  Array<T = number>(typecode: string, sizeOrValues: number | Iterable<T>): RemoteArrayProxy<T> {
    const values = typeof sizeOrValues === "number" ? new Array(checkSize(sizeOrValues)).fill(0) : [...sizeOrValues];
    return this.create("Array", typecode, values);
  }
  /**
   * A new pool of `processes` workers (by default as many as the server's
   * host has CPUs), in the server's host: our server runs this library's
   * `Pool` there, started at the first task (whose module's exported
   * functions it then runs); a Python server runs the Python functions a
   * `PyGlobal` names. `options.module`: the module that exports the tasks,
   * as a local `Pool`'s; by default the module that calls each method.
   *
   * @throws {RangeError} for processes that are not an integer >= 1.
   */
  Pool(processes?: number, options: { module?: string | URL } = {}): RemotePoolProxy {
    if (processes !== undefined && (!Number.isInteger(processes) || processes < 1)) {
      throw new RangeError(`manager.Pool(processes): processes must be an integer >= 1, got ${String(processes)}`);
    }
    const module = options.module === undefined ? undefined : moduleSpecifier(options.module, callerModule());
    return tasksFrom(this.create<RemotePoolProxy>("Pool", processes), module);
  }
  /** A new value of Python's `typecode` (kept for Python peers; any plain value fits). */
  Value<T = unknown>(typecode: string, value: T): RemoteValueProxy<T> {
    return this.create("Value", typecode, value);
  }
}

function checkSize(n: number): number {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`expected an integer >= 0, got ${String(n)}`);
  return n;
}

registerBuiltins(SyncManager, syncRegistry);
