/**
 * The manager's calls, as a program sees them: the proxies (Python's
 * `BaseProxy`, `DictProxy`, `ListProxy`, `NamespaceProxy`, `AutoProxy`).
 * Every method of every proxy is written once, over `callMethod(method,
 * args)`; `callMethod` hands the call to the proxy's {@linkcode Channel},
 * the seam between the calls and what carries them. In a program that is a
 * session on the manager's shared memory rings (session.ts); the remote
 * managers of `@mp/multiprocessing/managers` reuse these classes and their
 * methods by overriding `callMethod` to send the call over a socket, and a
 * socket transport of this manager would be one more `Channel`.
 *
 * @module
 */
import { reduce, type Reduction } from "../reduction.ts";
import { EXPOSED, PROXY, type ProxyState, type Typeid } from "./wire.ts";

/**
 * What a proxy needs of the way to its manager's server: calls, and the
 * counting of the handles on each object. Nothing here says how requests
 * travel.
 */
export interface Channel {
  /** The server's pid (0 before it runs), for messages. */
  readonly serverPid: number;
  /** Calls `method` on `object`: settles with the server's answer, rejects with its error or once it is gone. */
  call(object: number, typeid: Typeid, method: string, args: readonly unknown[]): Promise<unknown>;
  /** A proxy of `object` is being sent: the receiver's handle is counted. */
  sent(object: number): void;
  /** A proxy of `object` arrived in this process, counted for it when it was sent. */
  adopt(object: number): void;
  /** A proxy of `object` now lives in this process. */
  hold(object: number): void;
  /** A proxy of `object` was garbage-collected: its handle goes back. */
  release(object: number): void;
}

/** What each proxy is: its object and the channel to its manager. */
type Handle = ProxyState & { channel: Channel };

/** Each proxy's channel and object. */
const handles = new WeakMap<BaseProxy, Handle>();

// A proxy that is gone gives its handle back; the object is dropped once none is left.
const released = new FinalizationRegistry<{ channel: Channel; id: number }>(({ channel, id }) => channel.release(id));

/**
 * A proxy of the object `state` names, through `channel`, holding a handle on
 * it; `adopt` when the handle was counted as sent here.
 */
export function connect(channel: Channel, state: ProxyState, adopt: boolean): BaseProxy {
  if (adopt) channel.adopt(state.id);
  const base = new proxyTypes[state.typeid]();
  const proxy = state.typeid === "object" ? autoProxy(base, state.exposed) : base;
  const handle = { ...state, channel };
  handles.set(base, handle);
  handles.set(proxy, handle);
  channel.hold(state.id);
  released.register(proxy, { channel, id: state.id });
  return proxy;
}

/**
 * Python's AutoProxy: each exposed method of the object in the server (by
 * default every public one) is a method of the proxy. `then` stays missing,
 * or awaiting a proxy would call it. A proxy that exposes `next` (of a
 * generator or an iterator in the server) is async-iterable.
 */
function autoProxy(base: BaseProxy, exposed: string[] | undefined): BaseProxy {
  const offers = (key: string) => key !== "then" && (exposed ? exposed.includes(key) : !key.startsWith("_"));
  return new Proxy(base, {
    get(target, key) {
      if (key === Symbol.asyncIterator && exposed?.includes("next")) {
        return () => ({ next: () => target.callMethod("next") });
      }
      if (typeof key !== "string" || key in target || !offers(key)) return Reflect.get(target, key, target);
      return (...args: unknown[]) => target.callMethod(key, args);
    },
    has(target, key) {
      if (key in target) return true;
      if (key === Symbol.asyncIterator) return exposed?.includes("next") ?? false;
      return typeof key === "string" && offers(key);
    },
  });
}

function handleOf(proxy: BaseProxy): Handle {
  const found = handles.get(proxy);
  if (!found) throw new TypeError("not a manager proxy: get one from manager.dict(), list() or Namespace()");
  return found;
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
    const { channel, id, typeid } = handleOf(this);
    return await channel.call(id, typeid, method, args);
  }

  /**
   * The methods this proxy may call on its object, as Python's `_exposed_`:
   * those its registration or its class's `_exposed_` names, else every
   * public method, in sorted order.
   */
  exposedMethods(): Promise<string[]> {
    return this.callMethod(EXPOSED) as Promise<string[]>;
  }

  /**
   * Sends this proxy: its manager's name and its object's id, which any
   * process can connect with; the server counts the receiver's handle.
   *
   * @ignore
   */
  [reduce](): Reduction {
    const { channel, address, id, typeid, className, exposed } = handleOf(this);
    channel.sent(id);
    const state: ProxyState = { address, id, typeid, className, exposed };
    return { kind: PROXY, state };
  }

  /** Shows the type and the server, as Python's repr does. */
  toString(): string {
    const { channel, typeid, className } = handleOf(this);
    const kind = className === undefined ? this.constructor.name : "AutoProxy";
    return `<${kind} '${className ?? typeid}' of the manager in pid ${channel.serverPid}>`;
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
  /** The items from `start` up to, not including, `end`, as Python's `l[start:end]` (negative counts from the end). */
  slice(start?: number, end?: number): Promise<T[]> {
    return this.callMethod("slice", [start, end]) as Promise<T[]>;
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

/**
 * The proxy of an object of your class, from `manager.create(cls)`: Python's
 * AutoProxy. Each public method of `T` is here, async; the rest of
 * {@linkcode BaseProxy} too.
 *
 * @example
 * ```ts
 * import { type AutoProxy, Manager } from "@mp/multiprocessing";
 *
 * export class Greeter {
 *   greet(name: string): string {
 *     return `hello ${name}`;
 *   }
 * }
 *
 * if (import.meta.main) {
 *   await using manager = await Manager();
 *   const greeter: AutoProxy<Greeter> = manager.create(Greeter);
 *   console.log(await greeter.greet("bob")); // hello bob
 * }
 * ```
 */
export type AutoProxy<T> =
  & BaseProxy
  & {
    readonly [K in keyof T as K extends `_${string}` ? never : T[K] extends (...args: never[]) => unknown ? K : never]:
      T[K] extends (...args: infer A) => infer R ? (...args: A) => Promise<Awaited<R>> : never;
  };

const proxyTypes: Record<Typeid, typeof BaseProxy> = {
  object: BaseProxy,
  dict: DictProxy,
  list: ListProxy,
  Namespace: NamespaceProxy,
};
