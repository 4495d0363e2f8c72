/**
 * Managers: Python's `multiprocessing.Manager`. A server process owns plain
 * objects (a dict, a list, a namespace); other processes reach them through
 * proxies, whose every method is async. comlink carries the manager's own
 * requests (creating an object, shutting down). Each proxy has a MessagePort
 * of its own to its object, so a child talks to the server directly, never
 * through the main thread; a call on it is one small message each way, as
 * the time of a call is mostly the round trip itself.
 *
 * Locks, queues, events, barriers and shared values already work across
 * processes on shared memory, so the manager hands those out directly: they
 * behave as Python's proxies do, without a round trip per call.
 *
 * @module
 */
import type * as ComlinkModule from "comlink";
import { Barrier, type BarrierOptions } from "./barrier.ts";
import { Condition } from "./condition.ts";
import { Event } from "./event.ts";
import { BoundedSemaphore, Lock, RLock, Semaphore, type SemLock } from "./locks.ts";
import { PortCarrier, unref } from "./ports.ts";
import { hasEnded, Process } from "./process.ts";
import { JoinableQueue, Queue } from "./queues.ts";
import {
  dump,
  type Dumped,
  load,
  reduce,
  type ReducedError,
  reduceError,
  type Reduction,
  registerKind,
  reviveError,
} from "./reduction.ts";
import { type ItemOf, SharedArray, type Typecode, Value } from "./sharedctypes.ts";

/** The kinds of object a manager's server keeps, by Python's typeid. */
type Typeid = "dict" | "list" | "Namespace";

/** Where a proxy finds its server: the server's pid, and a shared flag set once the manager shuts down. */
interface ServerInfo {
  pid: number;
  /** `[0]` is 1 once the manager has been shut down. */
  flags: Int32Array;
}

/** A value as it crosses a port: structured-cloneable data, with this library's objects reduced. */
type Sent = Omit<Dumped, "transfer">;

/**
 * A call on a proxy's port: its id among that port's calls, and the method's
 * arguments as `dump` left them. Flat, as each nested array costs a structured
 * clone ~1 µs on Bun, a tenth of a round trip there.
 */
type Request = [id: number, method: string, reduced: boolean, ...args: unknown[]];

/**
 * What a proxy's port carries to the server: calls; another port to bind to
 * the same object (a proxy being sent to another process); and "release",
 * once the proxy has been garbage-collected.
 */
type ProxyMessage = Request | { connect: MessagePort } | "release";

/** How an answer's payload is to be read. */
const VALUE = 0;
const REDUCED = 1;
const ERROR = 2;

/** The server's answer to the call `id`: its result (walked by `load` if REDUCED), or its error. */
type Answer = [id: number, kind: typeof VALUE | typeof REDUCED, value: unknown] | [
  id: number,
  kind: typeof ERROR,
  error: ReducedError,
];

/** What the server exposes on the manager's own port. */
interface Control {
  ready(): boolean;
  create(typeid: Typeid, init: Sent, port: MessagePort): void;
  shutdown(): void;
}

// ---- The server ----------------------------------------------------------

// deno-lint-ignore no-explicit-any
type Methods<T> = Record<string, (target: T, ...args: any[]) => unknown>;

/** Python's index rules: negative counts from the end; out of range is an IndexError (a RangeError here). */
function position(list: unknown[], index: number, what: string): number {
  if (!Number.isInteger(index)) throw new TypeError(`list.${what}: index must be an integer, got ${String(index)}`);
  const at = index < 0 ? list.length + index : index;
  if (at < 0 || at >= list.length) throw new RangeError(`list.${what}: index ${index} out of range`);
  return at;
}

/** Python's `==` for what a proxy can hold: plain data compared by value, as the server only ever sees copies. */
function same(a: unknown, b: unknown): boolean {
  if (Object.is(a, b) || a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((item, i) => same(item, b[i]));
  if (a instanceof Map) {
    return b instanceof Map && a.size === b.size && [...a].every(([k, v]) => b.has(k) && same(v, b.get(k)));
  }
  if (Object.getPrototypeOf(a) !== Object.prototype || Object.getPrototypeOf(b) !== Object.prototype) return false;
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length &&
    keys.every((key) => key in b && same((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key]));
}

function find(list: unknown[], value: unknown): number {
  return list.findIndex((item) => same(item, value));
}

const dictMethods: Methods<Map<unknown, unknown>> = {
  get: (d, key, fallback) => d.has(key) ? d.get(key) : fallback,
  set: (d, key, value) => void d.set(key, value),
  has: (d, key) => d.has(key),
  delete: (d, key) => d.delete(key),
  pop: (d, key, ...fallback) => {
    if (!d.has(key)) {
      if (fallback.length) return fallback[0];
      throw new RangeError(`dict.pop: no key ${String(key)}`);
    }
    const value = d.get(key);
    d.delete(key);
    return value;
  },
  setDefault: (d, key, value) => {
    if (!d.has(key)) d.set(key, value);
    return d.get(key);
  },
  update: (d, entries: Iterable<[unknown, unknown]>) => {
    for (const [key, value] of entries) d.set(key, value);
  },
  keys: (d) => [...d.keys()],
  values: (d) => [...d.values()],
  entries: (d) => [...d.entries()],
  size: (d) => d.size,
  clear: (d) => d.clear(),
  toMap: (d) => d,
};

const listMethods: Methods<unknown[]> = {
  append: (l, value) => void l.push(value),
  extend: (l, values: unknown[]) => void l.push(...values),
  insert: (l, index: number, value) => {
    // Python clamps an insert position instead of raising.
    const at = index < 0 ? Math.max(0, l.length + index) : Math.min(index, l.length);
    l.splice(at, 0, value);
  },
  pop: (l, index = -1) => {
    if (l.length === 0) throw new RangeError("list.pop: pop from empty list");
    return l.splice(position(l, index, "pop"), 1)[0];
  },
  remove: (l, value) => {
    const at = find(l, value);
    if (at < 0) throw new Error(`list.remove: ${String(value)} is not in the list`);
    l.splice(at, 1);
  },
  index: (l, value) => {
    const at = find(l, value);
    if (at < 0) throw new Error(`list.index: ${String(value)} is not in the list`);
    return at;
  },
  count: (l, value) => l.filter((item) => same(item, value)).length,
  get: (l, index: number) => l[position(l, index, "get")],
  set: (l, index: number, value) => void (l[position(l, index, "set")] = value),
  delete: (l, index: number) => void l.splice(position(l, index, "delete"), 1),
  size: (l) => l.length,
  reverse: (l) => void l.reverse(),
  clear: (l) => void (l.length = 0),
  toArray: (l) => l,
};

const namespaceMethods: Methods<Record<string, unknown>> = {
  get: (ns, name: string) => {
    if (!Object.hasOwn(ns, name)) throw new Error(`'Namespace' object has no attribute '${name}'`);
    return ns[name];
  },
  set: (ns, name: string, value) => void (ns[name] = value),
  has: (ns, name: string) => Object.hasOwn(ns, name),
  delete: (ns, name: string) => {
    if (!Object.hasOwn(ns, name)) throw new Error(`'Namespace' object has no attribute '${name}'`);
    delete ns[name];
  },
  toObject: (ns) => ({ ...ns }),
};

const methodsOf: Record<Typeid, Methods<never>> = {
  dict: dictMethods,
  list: listMethods,
  Namespace: namespaceMethods,
};

function create(typeid: Typeid, init: unknown): unknown {
  if (typeid === "dict") return new Map(init as Iterable<[unknown, unknown]>);
  if (typeid === "list") return [...(init as Iterable<unknown>)];
  return Object.assign(Object.create(null), init);
}

/** One managed object and the number of proxy ports bound to it; it is dropped when the last is released. */
interface Referent {
  typeid: Typeid;
  value: unknown;
  ports: number;
}

/** Serves `referent` on `port`: every call gets exactly one answer, so no caller waits forever. */
function bind(referent: Referent, port: MessagePort, referents: Set<Referent>): void {
  const methods = methodsOf[referent.typeid];
  referent.ports++;
  port.addEventListener("message", ({ data }: MessageEvent<ProxyMessage>) => {
    if (data === "release") {
      port.close();
      if (--referent.ports === 0) referents.delete(referent);
      return;
    }
    if (!Array.isArray(data)) return bind(referent, data.connect, referents);
    const [id, method, reduced] = data;
    try {
      const call = Object.hasOwn(methods, method) ? methods[method] : undefined;
      if (!call) throw new TypeError(`a ${referent.typeid} proxy has no method '${method}'`);
      const result = call(referent.value as never, ...(load(data.slice(3), reduced) as unknown[]));
      const dumped = dump(result, `the result of ${referent.typeid}.${method}()`);
      const answer: Answer = [id, dumped.reduced ? REDUCED : VALUE, dumped.data];
      port.postMessage(answer, dumped.transfer);
    } catch (error) {
      const answer: Answer = [id, ERROR, reduceError(error)];
      port.postMessage(answer);
    }
  });
  port.start();
}

/**
 * comlink, loaded by the first `Manager()` or server: a child pays to load
 * it only if it runs one (it was a third of the library's load time on Deno).
 */
let Comlink: typeof ComlinkModule;

async function loadComlink(): Promise<void> {
  Comlink ??= await import("comlink");
}

function send(value: unknown, path: string): Sent {
  const dumped = dump(value, path);
  return Comlink.transfer({ data: dumped.data, reduced: dumped.reduced }, dumped.transfer);
}

/**
 * The manager's server: the target of the process that `Manager()` starts.
 * It keeps the managed objects and serves their proxies until the manager
 * shuts down. Not for direct use.
 *
 * @example
 * ```ts
 * import { Manager } from "@mp/multiprocessing";
 * await using manager = await Manager(); // starts a process running managerServer
 * ```
 */
export async function managerServer(port: MessagePort): Promise<void> {
  await loadComlink();
  const stopped = Promise.withResolvers<void>();
  const referents = new Set<Referent>();
  const control: Control = {
    ready: () => true,
    create(typeid, init, port) {
      const referent: Referent = { typeid, value: create(typeid, load(init.data, init.reduced)), ports: 0 };
      referents.add(referent);
      bind(referent, port, referents);
    },
    shutdown: () => stopped.resolve(),
  };
  Comlink.expose(control, port);
  await stopped.promise;
}

// ---- Calls and their lifecycle --------------------------------------------

/** Why calls to `server` can no longer be answered, or `undefined` while it serves. */
function stopReason(server: ServerInfo): string | undefined {
  if (Atomics.load(server.flags, 0) === 1) return "the manager has been shut down";
  if (hasEnded(server.pid)) return `the manager's server process (pid ${server.pid}) has ended`;
  return undefined;
}

/** How often pending calls look for a server that ended without answering. */
const WATCH_MS = 25;

/** Something waiting for answers from `server`: `fail` ends the wait once the server is gone. */
interface Waiter {
  server: ServerInfo;
  fail(reason: string): void;
}

const waiting = new Set<Waiter>();
// Ref'd while anything waits: it keeps the program alive for the answers, and ends the
// waits whose server is gone, since a MessagePort never says that its other end died.
// It is stopped by a tick that finds nothing waiting, not after each call: one call
// after another would otherwise start and clear a timer apiece.
let watchdog: ReturnType<typeof setInterval> | undefined;

function checkPending(): void {
  for (const waiter of waiting) {
    const reason = stopReason(waiter.server);
    if (reason) (waiting.delete(waiter), waiter.fail(reason));
  }
  if (waiting.size === 0) (clearInterval(watchdog), watchdog = undefined);
}

function startWaiting(waiter: Waiter): void {
  waiting.add(waiter);
  watchdog ??= setInterval(checkPending, WATCH_MS);
}

/** Settles as `reply` does, or rejects once `server` is gone. */
function watch<T>(reply: Promise<T>, server: ServerInfo): Promise<T> {
  const reason = stopReason(server);
  if (reason) return Promise.reject(new Error(reason));
  const { promise, resolve, reject } = Promise.withResolvers<T>();
  const waiter: Waiter = { server, fail: (reason) => reject(new Error(reason)) };
  startWaiting(waiter);
  reply.then(resolve, reject).finally(() => waiting.delete(waiter));
  return promise;
}

interface Call {
  resolve(value: unknown): void;
  reject(error: Error): void;
}

/** A proxy's connection: its port to the server, and the calls sent on it that are not answered yet. */
class Link implements Waiter {
  typeid: Typeid;
  port: MessagePort;
  server: ServerInfo;
  #calls = new Map<number, Call>();
  #lastId = 0;

  constructor(typeid: Typeid, port: MessagePort, server: ServerInfo) {
    this.typeid = typeid;
    this.port = port;
    this.server = server;
    port.addEventListener("message", ({ data }: MessageEvent<Answer>) => this.#answer(data));
    port.start();
    // Calls waiting for answers hold the program open (startWaiting); an idle proxy must not.
    unref(port);
  }

  call(method: string, args: readonly unknown[]): Promise<unknown> {
    const reason = stopReason(this.server);
    if (reason) return Promise.reject(new Error(reason));
    const { data, transfer, reduced } = dump(args, `${this.typeid}.${method}() args`);
    const id = ++this.#lastId;
    const request: Request = [id, method, reduced, ...(data as unknown[])];
    this.port.postMessage(request, transfer);
    const { promise, resolve, reject } = Promise.withResolvers<unknown>();
    this.#calls.set(id, { resolve, reject });
    startWaiting(this);
    return promise;
  }

  #answer([id, kind, payload]: Answer): void {
    const call = this.#calls.get(id);
    // Absent when the call was failed already: the server died or the manager shut down.
    if (!call) return;
    this.#calls.delete(id);
    if (this.#calls.size === 0) waiting.delete(this);
    if (kind === ERROR) return call.reject(reviveError(payload as ReducedError));
    try {
      call.resolve(load(payload, kind === REDUCED));
    } catch (error) {
      call.reject(error as Error);
    }
  }

  fail(reason: string): void {
    for (const call of this.#calls.values()) call.reject(new Error(reason));
    this.#calls.clear();
  }
}

const links = new WeakMap<BaseProxy, Link>();

// Tells the server to drop its end of a proxy that is gone, and the object once no proxy is left.
const released = new FinalizationRegistry<MessagePort>((port) => {
  const release: ProxyMessage = "release";
  port.postMessage(release);
});

/** A proxy of `typeid` on `port`. */
function connect(typeid: Typeid, port: MessagePort, server: ServerInfo): BaseProxy {
  const proxy = new proxyTypes[typeid]();
  links.set(proxy, new Link(typeid, port, server));
  released.register(proxy, port);
  return proxy;
}

function linkOf(proxy: BaseProxy): Link {
  const found = links.get(proxy);
  if (!found) throw new TypeError("not a manager proxy: get one from manager.dict(), list() or Namespace()");
  return found;
}

interface ProxyState {
  typeid: Typeid;
  port: MessagePort;
  server: ServerInfo;
}

/**
 * What every manager proxy shares, as Python's `BaseProxy`: a connection to
 * one object in the manager's server, calls on it, and sending it to another
 * process (in `args`, or through a queue or pipe), where it reaches the same
 * object.
 *
 * @example
 * ```ts
 * import { Manager } from "@mp/multiprocessing";
 * await using manager = await Manager();
 * const d = manager.dict();
 * await d.callMethod("set", ["x", 1]);
 * console.log(await d.callMethod("get", ["x"])); // 1
 * ```
 */
export class BaseProxy {
  /**
   * Calls `method` on the managed object with `args`, as Python's
   * `_callmethod`. Rejects with the server's error, with a `TypeError` for
   * an unknown method or arguments that cannot be sent, and at once when
   * the manager was shut down or its server has ended.
   */
  async callMethod(method: string, args: readonly unknown[] = []): Promise<unknown> {
    return await linkOf(this).call(method, args);
  }

  /**
   * Sends this proxy: a new port to the same object, so each process has a connection of its own.
   *
   * @ignore
   */
  [reduce](): Reduction {
    const { typeid, port, server } = linkOf(this);
    const { port1, port2 } = new MessageChannel();
    // The server binds port2 before it reads anything sent on port1: this message is ahead of those.
    const connect: ProxyMessage = { connect: port2 };
    port.postMessage(connect, [port2]);
    const state: ProxyState = { typeid, port: port1, server };
    return { kind: "managers.proxy", state, transfer: [port1] };
  }

  /** Shows the type and the server, as Python's repr does. */
  toString(): string {
    const { typeid, server } = linkOf(this);
    return `<${this.constructor.name} '${typeid}' of the manager in pid ${server.pid}>`;
  }
}

/**
 * A proxy for a dict in the manager's server, from `manager.dict()`. Keys
 * keep their types (number 1 and string "1" are different keys), as in
 * Python.
 *
 * @example
 * ```ts
 * import { Manager } from "@mp/multiprocessing";
 * await using manager = await Manager();
 * const d = manager.dict<number | string, unknown>();
 * await d.set(1, "1");
 * await d.set("2", 2);
 * console.log(await d.toMap()); // Map(2) { 1 => "1", "2" => 2 }
 * ```
 */
export class DictProxy<K = unknown, V = unknown> extends BaseProxy {
  /** `d[key]`, or `fallback` (undefined) when the key is missing, as Python's `d.get(key, fallback)`. */
  get(key: K): Promise<V | undefined>;
  /** `d[key]`, or `fallback` when the key is missing. */
  get<F>(key: K, fallback: F): Promise<V | F>;
  get(key: K, fallback?: unknown): Promise<unknown> {
    return this.callMethod("get", [key, fallback]);
  }
  /** `d[key] = value`. */
  async set(key: K, value: V): Promise<void> {
    await this.callMethod("set", [key, value]);
  }
  /** `key in d`. */
  has(key: K): Promise<boolean> {
    return this.callMethod("has", [key]) as Promise<boolean>;
  }
  /** Removes `key`; whether it was there. */
  delete(key: K): Promise<boolean> {
    return this.callMethod("delete", [key]) as Promise<boolean>;
  }
  /** Removes `key` and returns its value, or `fallback`; rejects with a `RangeError` (Python's KeyError) without one. */
  pop(key: K, ...fallback: [V?]): Promise<V> {
    return this.callMethod("pop", [key, ...fallback]) as Promise<V>;
  }
  /** Python's `setdefault`: the value of `key`, set to `value` first if missing. */
  setDefault(key: K, value: V): Promise<V> {
    return this.callMethod("setDefault", [key, value]) as Promise<V>;
  }
  /** Sets every `[key, value]` pair. */
  async update(entries: Iterable<readonly [K, V]>): Promise<void> {
    await this.callMethod("update", [[...entries]]);
  }
  /** The keys, in insertion order. */
  keys(): Promise<K[]> {
    return this.callMethod("keys") as Promise<K[]>;
  }
  /** The values, in insertion order. */
  values(): Promise<V[]> {
    return this.callMethod("values") as Promise<V[]>;
  }
  /** The `[key, value]` pairs, in insertion order (Python's `items()`). */
  entries(): Promise<[K, V][]> {
    return this.callMethod("entries") as Promise<[K, V][]>;
  }
  /** `len(d)`. */
  size(): Promise<number> {
    return this.callMethod("size") as Promise<number>;
  }
  /** Removes every key. */
  async clear(): Promise<void> {
    await this.callMethod("clear");
  }
  /** A copy of the whole dict, as Python's `d.copy()`. */
  toMap(): Promise<Map<K, V>> {
    return this.callMethod("toMap") as Promise<Map<K, V>>;
  }
}

/**
 * A proxy for a list in the manager's server, from `manager.list()`.
 * Indexes may be negative, as in Python.
 *
 * @example
 * ```ts
 * import { Manager } from "@mp/multiprocessing";
 * await using manager = await Manager();
 * const l = manager.list([0, 1, 2]);
 * await l.append(3);
 * console.log(await l.toArray()); // [0, 1, 2, 3]
 * ```
 */
export class ListProxy<T = unknown> extends BaseProxy {
  /** Adds `value` at the end. */
  async append(value: T): Promise<void> {
    await this.callMethod("append", [value]);
  }
  /** Adds every value at the end. */
  async extend(values: Iterable<T>): Promise<void> {
    await this.callMethod("extend", [[...values]]);
  }
  /** Inserts `value` before `index`. */
  async insert(index: number, value: T): Promise<void> {
    await this.callMethod("insert", [index, value]);
  }
  /** Removes and returns the item at `index` (the last by default); a `RangeError` when out of range. */
  pop(index: number = -1): Promise<T> {
    return this.callMethod("pop", [index]) as Promise<T>;
  }
  /** Removes the first item equal to `value`; rejects when there is none. */
  async remove(value: T): Promise<void> {
    await this.callMethod("remove", [value]);
  }
  /** The index of the first item equal to `value`; rejects when there is none. */
  index(value: T): Promise<number> {
    return this.callMethod("index", [value]) as Promise<number>;
  }
  /** How many items equal `value`. */
  count(value: T): Promise<number> {
    return this.callMethod("count", [value]) as Promise<number>;
  }
  /** `l[index]`; a `RangeError` when out of range. */
  get(index: number): Promise<T> {
    return this.callMethod("get", [index]) as Promise<T>;
  }
  /** `l[index] = value`; a `RangeError` when out of range. */
  async set(index: number, value: T): Promise<void> {
    await this.callMethod("set", [index, value]);
  }
  /** `del l[index]`. */
  async delete(index: number): Promise<void> {
    await this.callMethod("delete", [index]);
  }
  /** `len(l)`. */
  size(): Promise<number> {
    return this.callMethod("size") as Promise<number>;
  }
  /** Reverses the list in place. */
  async reverse(): Promise<void> {
    await this.callMethod("reverse");
  }
  /** Removes every item. */
  async clear(): Promise<void> {
    await this.callMethod("clear");
  }
  /** A copy of the whole list, as Python's `l[:]`. */
  toArray(): Promise<T[]> {
    return this.callMethod("toArray") as Promise<T[]>;
  }
}

/**
 * A proxy for a namespace in the manager's server, from
 * `manager.Namespace()`: Python's `ns.x` becomes `await ns.get("x")`.
 *
 * @example
 * ```ts
 * import { Manager } from "@mp/multiprocessing";
 * await using manager = await Manager();
 * const ns = manager.Namespace({ x: 1 });
 * await ns.set("y", "two");
 * console.log(await ns.toObject()); // { x: 1, y: "two" }
 * ```
 */
export class NamespaceProxy<T extends Record<string, unknown> = Record<string, unknown>> extends BaseProxy {
  /** `ns.name`; rejects when it is not set (Python's AttributeError). */
  get<N extends keyof T & string>(name: N): Promise<T[N]> {
    return this.callMethod("get", [name]) as Promise<T[N]>;
  }
  /** `ns.name = value`. */
  async set<N extends keyof T & string>(name: N, value: T[N]): Promise<void> {
    await this.callMethod("set", [name, value]);
  }
  /** `hasattr(ns, name)`. */
  has(name: string): Promise<boolean> {
    return this.callMethod("has", [name]) as Promise<boolean>;
  }
  /** `del ns.name`; rejects when it is not set. */
  async delete(name: keyof T & string): Promise<void> {
    await this.callMethod("delete", [name]);
  }
  /** A copy of every attribute. */
  toObject(): Promise<Partial<T>> {
    return this.callMethod("toObject") as Promise<Partial<T>>;
  }
}

const proxyTypes: Record<Typeid, typeof BaseProxy> = {
  dict: DictProxy,
  list: ListProxy,
  Namespace: NamespaceProxy,
};

registerKind("managers.proxy", (state) => {
  const { typeid, port, server } = state as ProxyState;
  return connect(typeid, port, server);
});

// ---- The manager ------------------------------------------------------------

/** How long `shutdown()` lets the server end by itself before it is terminated. */
const SHUTDOWN_GRACE_MS = 1_000;

/**
 * A running manager, from {@linkcode Manager}: it creates managed objects
 * and hands out their proxies, and `shutdown()` (or `await using`) stops its
 * server. Python's `SyncManager`.
 *
 * @example
 * ```ts
 * import { Manager } from "@mp/multiprocessing";
 * await using manager = await Manager();
 * const ns = manager.Namespace();
 * await ns.set("ready", true);
 * ```
 */
export class SyncManager {
  #process: Process;
  #server: ServerInfo;
  #port: MessagePort;
  #control: ComlinkModule.Remote<Control>;

  /** Not for direct use: `await Manager()` starts one. */
  constructor(process: Process, port: MessagePort, flags: Int32Array) {
    this.#process = process;
    this.#server = { pid: process.pid!, flags };
    this.#port = port;
    this.#control = Comlink.wrap<Control>(port);
    unref(port);
  }

  /** Waits until the server answers; rejects if it ends first. */
  async ready(): Promise<void> {
    await watch(this.#control.ready() as Promise<boolean>, this.#server);
  }

  /** The server process, as Python's `manager._process`. */
  get process(): Process {
    return this.#process;
  }

  #create(typeid: Typeid, init: unknown): BaseProxy {
    const reason = stopReason(this.#server);
    if (reason) throw new Error(`manager.${typeid}(): ${reason}`);
    const sent = send(init, `manager.${typeid}() initial value`);
    const { port1, port2 } = new MessageChannel();
    // Posted synchronously: the proxy can be used (and sent on) at once, its calls wait in port1.
    this.#control.create(typeid, sent, Comlink.transfer(port2, [port2])).catch(() => {});
    return connect(typeid, port1, this.#server);
  }

  /** A new managed dict, optionally filled from `[key, value]` pairs. */
  dict<K = unknown, V = unknown>(entries: Iterable<readonly [K, V]> = []): DictProxy<K, V> {
    return this.#create("dict", [...entries]) as DictProxy<K, V>;
  }

  /** A new managed list, optionally filled from `items` (Python's `manager.list(range(5))`). */
  list<T = unknown>(items: Iterable<T> = []): ListProxy<T> {
    return this.#create("list", [...items]) as ListProxy<T>;
  }

  /** A new managed namespace with the attributes of `attributes`. */
  Namespace<T extends Record<string, unknown> = Record<string, unknown>>(
    attributes: Partial<T> = {},
  ): NamespaceProxy<T> {
    return this.#create("Namespace", { ...attributes }) as NamespaceProxy<T>;
  }

  /** A {@linkcode Lock} shared by every process it is sent to. */
  Lock(): Lock {
    return new Lock();
  }

  /** An {@linkcode RLock} shared by every process it is sent to. */
  RLock(): RLock {
    return new RLock();
  }

  /** A {@linkcode Semaphore} starting at `value`. */
  Semaphore(value: number = 1): Semaphore {
    return new Semaphore(value);
  }

  /** A {@linkcode BoundedSemaphore} starting at, and bounded by, `value`. */
  BoundedSemaphore(value: number = 1): BoundedSemaphore {
    return new BoundedSemaphore(value);
  }

  /** A {@linkcode Condition} on `lock` (a new RLock by default). */
  Condition(lock?: SemLock): Condition {
    return new Condition(lock);
  }

  /** An {@linkcode Event}. */
  Event(): Event {
    return new Event();
  }

  /** A {@linkcode Barrier} for `parties` processes. */
  Barrier(parties: number, options: BarrierOptions = {}): Barrier {
    return new Barrier(parties, options);
  }

  /** A {@linkcode Queue} holding at most `maxsize` items (0: unbounded). */
  Queue<T = unknown>(maxsize: number = 0): Queue<T> {
    return new Queue<T>(maxsize);
  }

  /** A {@linkcode JoinableQueue} holding at most `maxsize` items (0: unbounded). */
  JoinableQueue<T = unknown>(maxsize: number = 0): JoinableQueue<T> {
    return new JoinableQueue<T>(maxsize);
  }

  /** A shared {@linkcode Value} of `typecode`. */
  Value<T extends Typecode>(typecode: T, value?: ItemOf<T>): Value<T> {
    return new Value(typecode, value);
  }

  /** A {@linkcode SharedArray} of `typecode`, of `size` zeros or of the given values. */
  Array<T extends Typecode>(typecode: T, sizeOrValues: number | Iterable<ItemOf<T>>): SharedArray<T> {
    return new SharedArray(typecode, sizeOrValues);
  }

  /**
   * Stops the server. Every proxy of this manager, in any process, then
   * rejects its calls at once, pending ones included. Calling it again does
   * nothing.
   */
  async shutdown(): Promise<void> {
    if (Atomics.exchange(this.#server.flags, 0, 1) === 1) return;
    checkPending();
    this.#control.shutdown().catch(() => {});
    await this.#process.join(SHUTDOWN_GRACE_MS);
    if (this.#process.isAlive()) {
      this.#process.terminate();
      await this.#process.join();
    }
    this.#port.close();
  }

  /** `await using manager = await Manager()` shuts the manager down at the end of the block. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.shutdown();
  }
}

/**
 * Starts a manager: a server process that keeps shared dicts, lists and
 * namespaces, reached through proxies that can be sent to other processes.
 *
 * @example
 * ```ts
 * import { type DictProxy, type ListProxy, Manager, Process } from "@mp/multiprocessing";
 *
 * export async function f(d: DictProxy<number | string, unknown>, l: ListProxy<number>) {
 *   await d.set(1, "1");
 *   await l.append(42);
 * }
 *
 * if (import.meta.main) {
 *   await using manager = await Manager();
 *   const d = manager.dict();
 *   const l = manager.list([0, 1]);
 *   const p = new Process({ target: f, args: [d, l] });
 *   p.start();
 *   await p.join();
 *   console.log(await l.toArray()); // [0, 1, 42]
 * }
 * ```
 */
export async function Manager(): Promise<SyncManager> {
  await loadComlink();
  const { port1, port2 } = new MessageChannel();
  const flags = new Int32Array(new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT));
  // A daemon, reached through unref'd ports: a manager that was never shut down does not hold the program open
  // (except on Deno, whose Web Workers cannot be unref'd).
  const process = new Process({
    target: managerServer,
    module: import.meta.url,
    args: [new PortCarrier(port2)],
    daemon: true,
  });
  process.name = process.name.replace("Process", "SyncManager");
  process.start();
  const manager = new SyncManager(process, port1, flags);
  try {
    await manager.ready();
  } catch (error) {
    await manager.shutdown();
    throw error;
  }
  return manager;
}
