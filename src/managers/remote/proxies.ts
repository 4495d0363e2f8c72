/**
 * Proxies of a remote manager's objects. The dict, list and namespace
 * proxies are the in-program manager's classes (`DictProxy`…, same methods,
 * same errors) with their calls sent over a socket: each method becomes the
 * Python method a Python server serves (`set` → `__setitem__`, `size` →
 * `__len__`, `toMap` → `copy`), so they work against a Python server as
 * against ours. Queue, event and value proxies have the in-program
 * objects' methods, async (locks and conditions: `lock_proxies.ts`, barriers
 * and arrays: `sync_proxies.ts`); a proxy of anything else is an AutoProxy
 * whose methods are the object's (Python's names, Python's arguments),
 * made by `proxy_types.ts`.
 *
 * A proxy holds one reference on its object, given back when it is
 * garbage-collected; it travels to another process of the program (in a
 * Queue, a Pipe, `args`) and to a Python peer (pickled as `RebuildProxy`):
 * that handle and those ways out are `proxy_handles.ts`.
 *
 * @module
 */
import {
  type AutoProxy as InProgramAutoProxy,
  BaseProxy,
  DictProxy,
  ListProxy,
  NamespaceProxy,
} from "../../managers.ts";
import { PyObject } from "../../python/pickle.ts";
import { reduce, type Reduction } from "../../reduction.ts";
import type { QueueWaitOptions } from "../../queues.ts";
import { describeRemote, reduceRemote, remoteCall } from "./proxy_handles.ts";

/** A call of a container's own method (dict, list, namespace): pipelined. */
function containerCall(proxy: object, method: string, args: readonly unknown[]): Promise<unknown> {
  return remoteCall(proxy, method, args, undefined, true);
}

/** Whether `error` is Python's `exception` (a KeyError comes as a RangeError tagged with its Python type). */
function isPython(error: unknown, exception: string): boolean {
  return (error as { pythonType?: string } | null)?.pythonType === `builtins.${exception}`;
}

/** The in-program proxy methods, by what a Python server calls them. */
const dictCalls: Record<string, (proxy: object, args: readonly unknown[]) => Promise<unknown>> = {
  // `d.get(key)` without a fallback is undefined for a missing key, as in-program: asked as `d[key]`.
  get: (p, [key, ...fallback]) =>
    fallback.length && fallback[0] !== undefined
      ? containerCall(p, "get", [key, fallback[0]])
      : containerCall(p, "__getitem__", [key]).catch((e) => isPython(e, "KeyError") ? undefined : Promise.reject(e)),
  set: (p, args) => containerCall(p, "__setitem__", args),
  has: (p, args) => containerCall(p, "__contains__", args),
  delete: (p, args) =>
    containerCall(p, "__delitem__", args).then(() => true, (e) => isPython(e, "KeyError") ? false : Promise.reject(e)),
  pop: (p, args) => containerCall(p, "pop", args),
  setDefault: (p, args) => containerCall(p, "setdefault", args),
  update: (p, args) => containerCall(p, "update", args),
  keys: (p) => containerCall(p, "keys", []),
  values: (p) => containerCall(p, "values", []),
  entries: (p) => containerCall(p, "items", []),
  size: (p) => containerCall(p, "__len__", []),
  clear: (p) => containerCall(p, "clear", []),
  toMap: async (p) => asMap(await containerCall(p, "copy", [])),
};

function asMap(value: unknown): Map<unknown, unknown> {
  if (value instanceof Map) return value;
  return new Map(Object.entries(value as Record<string, unknown>));
}

const listCalls: Record<string, (proxy: object, args: readonly unknown[]) => Promise<unknown>> = {
  get: (p, args) => containerCall(p, "__getitem__", args),
  set: (p, args) => containerCall(p, "__setitem__", args),
  delete: (p, args) => containerCall(p, "__delitem__", args),
  size: (p) => containerCall(p, "__len__", []),
  // Python's ListProxy exposes no `clear`: `l *= 0` empties the list in place.
  clear: (p) => containerCall(p, "__imul__", [0]).then(() => undefined),
  toArray: (p) => containerCall(p, "#GETVALUE", []),
};

const namespaceCalls: Record<string, (proxy: object, args: readonly unknown[]) => Promise<unknown>> = {
  get: (p, args) => containerCall(p, "__getattribute__", args),
  set: (p, args) => containerCall(p, "__setattr__", args),
  has: (p, args) =>
    containerCall(p, "__getattribute__", args).then(
      () => true,
      (e) => (e as { pythonType?: string }).pythonType === "builtins.AttributeError" ? false : Promise.reject(e),
    ),
  delete: (p, args) => containerCall(p, "__delattr__", args),
  toObject: async (p) => {
    const value = await containerCall(p, "#GETVALUE", []);
    const state = value instanceof PyObject ? value.state : value;
    return state instanceof Map ? Object.fromEntries(state) : { ...(state as object) };
  },
};

/**
 * A dict in a remote manager: the in-program `DictProxy`'s methods, over the socket.
 *
 * @example
 * ```ts
 * import { SyncManager } from "@mp/multiprocessing/managers";
 * await using manager = new SyncManager({ address: ["127.0.0.1", 0] });
 * await manager.start();
 * const d = manager.dict<string, number>();
 * await d.set("x", 1);
 * console.log(await d.toMap()); // Map(1) { "x" => 1 }
 * ```
 */
export class RemoteDictProxy<K = unknown, V = unknown> extends DictProxy<K, V> {
  /** Calls a `DictProxy` method, or a Python method of the dict by its Python name. */
  override callMethod(method: string, args: readonly unknown[] = []): Promise<unknown> {
    return Object.hasOwn(dictCalls, method) ? dictCalls[method](this, args) : remoteCall(this, method, args);
  }
  /**
   * Sends this proxy to another process (in `args`, through a `Queue`): its
   * token and the manager's key, with which the receiver connects and holds
   * a reference of its own.
   *
   * @ignore
   */
  override [reduce](): Reduction {
    return reduceRemote(this);
  }
  /** Which object of which manager it stands for: `<DictProxy object, typeid 'dict' of the manager at [...]>`. */
  override toString(): string {
    return describeRemote(this);
  }
}

/**
 * A list in a remote manager: the in-program `ListProxy`'s methods, over the socket.
 *
 * @example
 * ```ts
 * import { SyncManager } from "@mp/multiprocessing/managers";
 * await using manager = new SyncManager({ address: ["127.0.0.1", 0] });
 * await manager.start();
 * const l = manager.list([1, 2]);
 * await l.append(3);
 * console.log(await l.toArray()); // [1, 2, 3]
 * ```
 */
export class RemoteListProxy<T = unknown> extends ListProxy<T> {
  /** Calls a `ListProxy` method, or a Python method of the list by its Python name. */
  override callMethod(method: string, args: readonly unknown[] = []): Promise<unknown> {
    return Object.hasOwn(listCalls, method) ? listCalls[method](this, args) : remoteCall(this, method, args);
  }
  /**
   * Sends this proxy to another process (in `args`, through a `Queue`): its
   * token and the manager's key, with which the receiver connects and holds
   * a reference of its own.
   *
   * @ignore
   */
  override [reduce](): Reduction {
    return reduceRemote(this);
  }
  /** Which object of which manager it stands for: `<DictProxy object, typeid 'dict' of the manager at [...]>`. */
  override toString(): string {
    return describeRemote(this);
  }
}

/**
 * A namespace in a remote manager: the in-program `NamespaceProxy`'s methods, over the socket.
 *
 * @example
 * ```ts
 * import { SyncManager } from "@mp/multiprocessing/managers";
 * await using manager = new SyncManager({ address: ["127.0.0.1", 0] });
 * await manager.start();
 * const ns = manager.Namespace({ x: 1 });
 * console.log(await ns.get("x")); // 1
 * ```
 */
export class RemoteNamespaceProxy<T extends Record<string, unknown> = Record<string, unknown>>
  extends NamespaceProxy<T> {
  /** Calls a `NamespaceProxy` method, or a Python method by its Python name. */
  override callMethod(method: string, args: readonly unknown[] = []): Promise<unknown> {
    return Object.hasOwn(namespaceCalls, method) ? namespaceCalls[method](this, args) : remoteCall(this, method, args);
  }
  /**
   * Sends this proxy to another process (in `args`, through a `Queue`): its
   * token and the manager's key, with which the receiver connects and holds
   * a reference of its own.
   *
   * @ignore
   */
  override [reduce](): Reduction {
    return reduceRemote(this);
  }
  /** Which object of which manager it stands for: `<DictProxy object, typeid 'dict' of the manager at [...]>`. */
  override toString(): string {
    return describeRemote(this);
  }
}

/**
 * Python's `(block, timeout)` from the library's options: milliseconds become seconds.
 *
 * @example
 * ```ts
 * blockTimeout({ timeout: 1500 }); // [true, 1.5]
 * ```
 */
export function blockTimeout(
  options: { block?: boolean; timeout?: number } | number | undefined,
): [boolean, number | null] {
  const { block = true, timeout } = typeof options === "number" ? { timeout: options } : options ?? {};
  if (timeout !== undefined && (typeof timeout !== "number" || Number.isNaN(timeout) || timeout < 0)) {
    throw new RangeError(`timeout must be a number of milliseconds >= 0, got ${String(timeout)}`);
  }
  return [block, timeout === undefined || timeout === Infinity ? null : timeout / 1_000];
}

/**
 * What every remote proxy shares: `callMethod` with Python's method names.
 *
 * @example
 * ```ts
 * import { SyncManager } from "@mp/multiprocessing/managers";
 * await using manager = new SyncManager({ address: ["127.0.0.1", 0] });
 * await manager.start();
 * const d = manager.dict([["a", 1]]);
 * console.log(await d.callMethod("__len__")); // 1
 * ```
 */
export class RemoteProxy extends BaseProxy {
  /** Calls `method` (its Python name) with `args`; rejects with the server's error. */
  override callMethod(method: string, args: readonly unknown[] = []): Promise<unknown> {
    return remoteCall(this, method, args);
  }
  /**
   * Sends this proxy to another process (in `args`, through a `Queue`): its
   * token and the manager's key, with which the receiver connects and holds
   * a reference of its own.
   *
   * @ignore
   */
  override [reduce](): Reduction {
    return reduceRemote(this);
  }
  /** Which object of which manager it stands for: `<DictProxy object, typeid 'dict' of the manager at [...]>`. */
  override toString(): string {
    return describeRemote(this);
  }
}

/**
 * A queue in a remote manager (`manager.Queue()`): the library `Queue`'s
 * methods, async, with timeouts in milliseconds; an aborted `get` takes no item.
 *
 * @example
 * ```ts
 * import { SyncManager } from "@mp/multiprocessing/managers";
 * await using manager = new SyncManager({ address: ["127.0.0.1", 0] });
 * await manager.start();
 * const q = manager.Queue<string>();
 * await q.put("hi");
 * console.log(await q.get()); // "hi"
 * ```
 */
export class RemoteQueueProxy<T = unknown> extends RemoteProxy {
  /** Puts `obj`, waiting for room as the options say; rejects with `Full`. */
  async put(obj: T, options?: QueueWaitOptions): Promise<void> {
    await remoteCall(this, "put", [obj, ...blockTimeout(options)], options?.signal);
  }
  /** Takes the next item, waiting as the options say; rejects with `Empty`. */
  get(options?: QueueWaitOptions): Promise<T> {
    return remoteCall(this, "get", blockTimeout(options), options?.signal) as Promise<T>;
  }
  /** Puts without waiting; rejects with `Full`. */
  async putNowait(obj: T): Promise<void> {
    await remoteCall(this, "put_nowait", [obj]);
  }
  /** Takes without waiting; rejects with `Empty`. */
  getNowait(): Promise<T> {
    return remoteCall(this, "get_nowait", []) as Promise<T>;
  }
  /** How many items it holds. */
  qsize(): Promise<number> {
    return remoteCall(this, "qsize", []) as Promise<number>;
  }
  /** Whether it holds none. */
  empty(): Promise<boolean> {
    return remoteCall(this, "empty", []) as Promise<boolean>;
  }
  /** Whether it is at its maxsize. */
  full(): Promise<boolean> {
    return remoteCall(this, "full", []) as Promise<boolean>;
  }
  /** A JoinableQueue's `task_done()`. */
  async taskDone(): Promise<void> {
    await remoteCall(this, "task_done", []);
  }
  /** Waits until every item put was marked done. */
  async join(): Promise<void> {
    await remoteCall(this, "join", []);
  }
}

/**
 * An event in a remote manager, as the library's `Event`, async.
 *
 * @example
 * ```ts
 * import { SyncManager } from "@mp/multiprocessing/managers";
 * await using manager = new SyncManager({ address: ["127.0.0.1", 0] });
 * await manager.start();
 * const event = manager.Event();
 * await event.set();
 * console.log(await event.isSet()); // true
 * ```
 */
export class RemoteEventProxy extends RemoteProxy {
  /** Whether it is set. */
  isSet(): Promise<boolean> {
    return remoteCall(this, "is_set", []) as Promise<boolean>;
  }
  /** Sets it, waking every waiter. */
  async set(): Promise<void> {
    await remoteCall(this, "set", []);
  }
  /** Clears it. */
  async clear(): Promise<void> {
    await remoteCall(this, "clear", []);
  }
  /** Waits until it is set, at most `timeout` ms; whether it is. */
  wait(timeout?: number): Promise<boolean> {
    return remoteCall(this, "wait", [blockTimeout(timeout)[1]]) as Promise<boolean>;
  }
}

/**
 * A value in a remote manager (`manager.Value("i", 0)`), Python's `ValueProxy`.
 *
 * @example
 * ```ts
 * import { SyncManager } from "@mp/multiprocessing/managers";
 * await using manager = new SyncManager({ address: ["127.0.0.1", 0] });
 * await manager.start();
 * const v = manager.Value("i", 1);
 * await v.set(2);
 * console.log(await v.get()); // 2
 * ```
 */
export class RemoteValueProxy<T = unknown> extends RemoteProxy {
  /** The value. */
  get(): Promise<T> {
    return remoteCall(this, "get", []) as Promise<T>;
  }
  /** Sets the value. */
  async set(value: T): Promise<void> {
    await remoteCall(this, "set", [value]);
  }
}

/** The proxy of an object of any other typeid: its methods by Python's names (Python's AutoProxy). */
export type RemoteAutoProxy<T = Record<string, (...args: never[]) => unknown>> = InProgramAutoProxy<T>;
