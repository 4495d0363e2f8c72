/**
 * Proxies of a remote manager's objects. The dict, list and namespace
 * proxies are the in-program manager's classes (`DictProxy`…, same methods,
 * same errors) with their calls sent over a socket: each method becomes the
 * Python method a Python server serves (`set` → `__setitem__`, `size` →
 * `__len__`, `toMap` → `copy`), so they work against a Python server as
 * against ours. Queue, lock, event and value proxies have the in-program
 * objects' methods, async; a proxy of anything else is an AutoProxy whose
 * methods are the object's (Python's names, Python's arguments).
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
import { EOFError } from "../../errors.ts";
import { PyObject } from "../../python/pickle.ts";
import { reduce, type Reduction, registerKind } from "../../reduction.ts";
import type { AcquireOptions } from "../../locks.ts";
import type { QueueWaitOptions } from "../../queues.ts";
import type { ManagerClient } from "./client.ts";
import type { Channel } from "./server.ts";
import { type Address, Token } from "./protocol.ts";
import {
  describeRemote,
  handleOf,
  holdHandle,
  pickledProxy,
  proxiesMade,
  reduceRemote,
  REMOTE_PROXY,
  remoteCall,
  type RemoteState,
} from "./proxy_handles.ts";

export { pickledProxy, proxiesMade };

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

/** Python's `(block, timeout)` from the library's options: milliseconds become seconds. */
function blockTimeout(options: { block?: boolean; timeout?: number } | number | undefined): [boolean, number | null] {
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

/** While a lock owned by its connection is held through a proxy: that connection, and how deep it is held. */
interface Holder {
  channel: Channel;
  depth: number;
}

const holders = new WeakMap<object, Holder>();

/** The Conditions made on a plain `Lock()`, which nobody in particular owns. */
const onPlainLock = new WeakSet<object>();

/** Whether the server owns the proxy's lock by connection: an RLock, a Condition on one. */
function ownedByConnection(proxy: object): boolean {
  const { typeid } = handleOf(proxy).token;
  return (typeid === "RLock" || typeid === "Condition") && !onPlainLock.has(proxy);
}

/**
 * Records that `condition` was made on `lock`: on a plain Lock, its calls may go on any connection.
 *
 * @example
 * ```ts
 * const condition = conditionOn(manager.create("Condition", lock), lock);
 * ```
 */
export function conditionOn<P extends object>(condition: P, lock: object | undefined): P {
  if (lock && handleOf(lock).token.typeid === "Lock") onPlainLock.add(condition);
  return condition;
}

/**
 * The connection that holds the proxy's lock, if it is held (a Condition's `notify` goes on it).
 *
 * @example
 * ```ts
 * await remoteCall(condition, "notify", [1], undefined, false, holderChannel(condition));
 * ```
 */
export function holderChannel(proxy: object): Channel | undefined {
  return holders.get(proxy)?.channel;
}

/**
 * Runs a Condition's `wait` on the holder's connection, whose lock the
 * server releases while it waits and holds again once it answers.
 *
 * @example
 * ```ts
 * await releasedDuring(condition, (channel) => remoteCall(condition, "wait", [null], undefined, false, channel));
 * ```
 */
export async function releasedDuring<T>(proxy: object, wait: (channel?: Channel) => Promise<T>): Promise<T> {
  const held = holders.get(proxy);
  holders.delete(proxy);
  const result = await onHolder(proxy, held, () => wait(held?.channel));
  if (held) holders.set(proxy, held);
  return result;
}

/**
 * A call on the holder's connection: when that connection ends (the server died, or cut it), the server has let
 * the lock go with it, so the proxy holds nothing more and its next calls open a connection of their own.
 */
async function onHolder<T>(proxy: object, held: Holder | undefined, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (held && error instanceof EOFError && holders.get(proxy) === held) holders.delete(proxy);
    throw error;
  }
}

/**
 * A lock or semaphore in a remote manager (Python's `AcquirerProxy`), as the
 * library's `Lock`, async. Held by this client: if it dies, our server
 * releases it.
 *
 * A server (Python's, and ours for Python's sake) owns an RLock by the
 * connection that acquired it, as Python's by the thread serving it, while
 * this client spreads calls over idle connections: so an RLock's (and a
 * Condition's on one) acquire keeps its connection, and the holder's calls
 * (a re-entrant acquire, `release`, a Condition's `wait`/`notify`) go on it.
 * The holder is this proxy in this process, as the in-program RLock's
 * owner is a process.
 *
 * @example
 * ```ts
 * import { SyncManager } from "@mp/multiprocessing/managers";
 * await using manager = new SyncManager({ address: ["127.0.0.1", 0] });
 * await manager.start();
 * const lock = manager.Lock();
 * if (await lock.acquire()) await lock.release();
 * ```
 */
export class RemoteLockProxy extends RemoteProxy {
  /** Acquires, waiting as the options say (milliseconds); whether it was acquired. */
  async acquire(options?: AcquireOptions): Promise<boolean> {
    const signal = typeof options === "object" ? options?.signal : undefined;
    const [block, timeout] = blockTimeout(options);
    // No timeout goes as none at all, as Python's AcquirerProxy sends it: a Python server's Lock and RLock
    // refuse `acquire(True, None)` (TypeError), their default being -1.
    const args = timeout === null ? [block] : [block, timeout];
    if (!ownedByConnection(this)) return await remoteCall(this, "acquire", args, signal) as boolean;
    const held = holders.get(this);
    if (held) {
      // Re-entrant, on the connection that owns it: granted at once.
      const again = await onHolder(
        this,
        held,
        () => remoteCall(this, "acquire", args, signal, false, held.channel),
      ) as boolean;
      if (again) held.depth++;
      return again;
    }
    const { client } = handleOf(this);
    const channel = await client.takeChannel();
    let acquired = false;
    try {
      acquired = await remoteCall(this, "acquire", args, signal, false, channel) as boolean;
    } finally {
      if (acquired) holders.set(this, { channel, depth: 1 });
      else client.giveBack(channel);
    }
    return acquired;
  }

  /** Releases; rejects when it was not held. */
  async release(): Promise<void> {
    const held = holders.get(this);
    await onHolder(this, held, () => remoteCall(this, "release", [], undefined, false, held?.channel));
    if (held && --held.depth === 0) {
      // Another holder may have come in meanwhile (a wait taking the lock back): it stays.
      if (holders.get(this) === held) holders.delete(this);
      handleOf(this).client.giveBack(held.channel);
    }
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

const proxyClasses: Record<string, new () => object> = {
  DictProxy: RemoteDictProxy,
  ListProxy: RemoteListProxy,
  NamespaceProxy: RemoteNamespaceProxy,
  AcquirerProxy: RemoteLockProxy,
  EventProxy: RemoteEventProxy,
  ValueProxy: RemoteValueProxy,
  QueueProxy: RemoteQueueProxy,
};

/**
 * Gives the proxies of Python's `proxytype` the class `Class` (sync_proxies.ts adds Condition, Barrier and Array).
 *
 * @example
 * ```ts
 * addProxyClass("BarrierProxy", RemoteBarrierProxy);
 * ```
 */
export function addProxyClass(proxytype: string, Class: new () => RemoteProxy): void {
  proxyClasses[proxytype] = Class;
}

/** Every property a proxy lacks is a method of the object (but `then`, or awaiting it would call it). */
function autoProxy(base: RemoteProxy): RemoteProxy {
  return new Proxy(base, {
    get(target, key) {
      if (typeof key !== "string" || key in target || key === "then") return Reflect.get(target, key, target);
      return (...args: unknown[]) => target.callMethod(key, args);
    },
  });
}

/**
 * A proxy of `token` through `client`. `ident`: the object's id, or a promise
 * of it while `create` is on its way (a proxy is returned at once, as the
 * in-program manager's are). `owned`: the server counted this proxy's
 * reference already; otherwise it increfs.
 */
export function makeProxy(
  client: ManagerClient,
  token: Token,
  exposed: readonly string[] | undefined,
  proxytype: string,
  owned: boolean,
  ident: Promise<string> = Promise.resolve(token.id),
): object {
  const Class = proxyClasses[proxytype] ?? RemoteProxy;
  const base = new Class();
  const proxy = Class === RemoteProxy ? autoProxy(base as RemoteProxy) : base;
  const held = owned ? ident : ident.then(async (id) => (await client.serverCall("incref", [id]), id));
  void ident.then((id) => (token.id = id), () => {});
  // A failed creation rejects every call, with its reason; it is not also an unhandled rejection.
  held.catch(() => {});
  holdHandle(base, proxy, { client, token, exposed, proxytype, ident: held });
  return proxy;
}

/** Set by the manager module: the client for an address and key in this process. */
let clientFor: (address: Address, authkey: Uint8Array) => ManagerClient = () => {
  throw new Error("the remote manager module is not loaded");
};

/** Lets revived proxies find (or make) this process's client for their manager. */
export function setClientSource(source: (address: Address, authkey: Uint8Array) => ManagerClient): void {
  clientFor = source;
}

registerKind(REMOTE_PROXY, (state) => {
  const { address, authkey, typeid, id, exposed, proxytype } = state as RemoteState;
  return makeProxy(clientFor(address, authkey), new Token(typeid, address, id), exposed, proxytype, false);
});
