/**
 * What a remote manager knows of each typeid: Python's
 * `BaseManager._registry` entries `(callable, exposed, method_to_typeid,
 * proxytype)`. The server uses `callable` to make objects; a client uses
 * `proxytype` to pick the proxy of a result. A class inherits its parent's
 * registry and adds to a copy, as Python's `register` does.
 *
 * @module
 */
import { Dict, Namespace } from "./referents.ts";
import { ManagedBarrier, ManagedCondition, ManagedEvent, ManagedLock, ManagedQueue } from "./waiting_referents.ts";
import { ManagedValue } from "./referents.ts";
import { List, ManagedArray } from "./sequence_referents.ts";
import { ManagedPool } from "./pool_referents.ts";

/** What makes a server-side object: a function called with the arguments, or a class constructed with them. */
// deno-lint-ignore no-explicit-any
export type Maker = ((...args: any[]) => unknown) | (new (...args: any[]) => unknown);

/** Options of `register`, as Python's keyword arguments. */
export interface RegisterOptions {
  /** The proxy's class, by Python's name: `"AutoProxy"` (the default), `"DictProxy"`, `"ListProxy"`, … */
  proxytype?: string;
  /** The methods a proxy may call; by default the object's public methods (names not starting with `_`). */
  exposed?: readonly string[];
  /** Methods whose result stays in the server and comes back as a proxy of this typeid. */
  methodToTypeid?: Record<string, string>;
  /** Whether the manager gets a method named `typeid` that creates one (default true). */
  createMethod?: boolean;
}

/** One registered typeid. */
export interface Registration {
  typeid: string;
  /** Undefined on a client that only connects (Python's `register('get_queue')`). */
  callable?: Maker;
  exposed?: readonly string[];
  methodToTypeid?: Record<string, string>;
  proxytype: string;
  createMethod: boolean;
  /**
   * The callable gets this server's own objects for the proxies of them among its arguments (a Condition's
   * lock), where Python's server would give it a proxy that calls back into the server.
   */
  referents?: boolean;
}

/** A typeid's registration from `register`'s arguments; throws a `TypeError` for bad ones. */
export function registration(typeid: string, callable: Maker | undefined, options: RegisterOptions): Registration {
  if (typeof typeid !== "string" || typeid === "") throw new TypeError("register: typeid must be a non-empty string");
  if (callable !== undefined && typeof callable !== "function") {
    throw new TypeError(`register('${typeid}'): callable must be a function or a class, got ${typeof callable}`);
  }
  const { proxytype = "AutoProxy", exposed, methodToTypeid, createMethod = true } = options;
  if (exposed !== undefined && !(Array.isArray(exposed) && exposed.every((name) => typeof name === "string"))) {
    throw new TypeError(`register('${typeid}'): exposed must be an array of method names`);
  }
  for (const [method, result] of Object.entries(methodToTypeid ?? {})) {
    if (typeof result !== "string") {
      throw new TypeError(`register('${typeid}'): methodToTypeid.${method} must be a typeid`);
    }
  }
  return { typeid, callable, exposed, methodToTypeid, proxytype, createMethod };
}

/** Whether `maker` is a class (constructed with `new`) rather than a function (called). */
export function isClass(maker: Maker): boolean {
  return /^class[\s{]/.test(Function.prototype.toString.call(maker));
}

/** Makes an object with `maker`: Python's `callable(*args, **kwds)`; keywords come last, as an object. */
export function make(maker: Maker, args: readonly unknown[], kwds: Record<string, unknown>): unknown {
  const all = Object.keys(kwds).length ? [...args, kwds] : [...args];
  return isClass(maker)
    ? new (maker as new (...args: unknown[]) => unknown)(...all)
    : (maker as (...args: unknown[]) => unknown)(...all);
}

const lock = (kind: ManagedLock["kind"]) => (value?: number) => new ManagedLock(kind, value ?? 1);

/** Python's `SyncManager` typeids, served with Python's semantics (see referents.ts). */
export const syncRegistry: readonly Registration[] = [
  {
    typeid: "dict",
    callable: (init?: unknown, kwds?: Record<string, unknown>) => new Dict(init, kwds),
    proxytype: "DictProxy",
    exposed: Dict.exposed,
  },
  { typeid: "list", callable: (init?: unknown) => new List(init ?? []), proxytype: "ListProxy", exposed: List.exposed },
  {
    typeid: "Namespace",
    callable: (kwds?: Record<string, unknown>) => new Namespace(kwds),
    proxytype: "NamespaceProxy",
    exposed: Namespace.exposed,
  },
  {
    typeid: "Queue",
    callable: (maxsize?: number) => new ManagedQueue(maxsize ?? 0),
    proxytype: "QueueProxy",
    exposed: ManagedQueue.exposed,
  },
  {
    typeid: "JoinableQueue",
    callable: (maxsize?: number) => new ManagedQueue(maxsize ?? 0),
    proxytype: "QueueProxy",
    exposed: ManagedQueue.exposed,
  },
  { typeid: "Lock", callable: lock("Lock"), proxytype: "AcquirerProxy", exposed: ManagedLock.exposed },
  { typeid: "RLock", callable: lock("RLock"), proxytype: "AcquirerProxy", exposed: ManagedLock.exposed },
  { typeid: "Semaphore", callable: lock("Semaphore"), proxytype: "AcquirerProxy", exposed: ManagedLock.exposed },
  {
    typeid: "BoundedSemaphore",
    callable: lock("BoundedSemaphore"),
    proxytype: "AcquirerProxy",
    exposed: ManagedLock.exposed,
  },
  { typeid: "Event", callable: () => new ManagedEvent(), proxytype: "EventProxy", exposed: ManagedEvent.exposed },
  {
    typeid: "Value",
    callable: (typecode: unknown, value: unknown) => new ManagedValue(typecode, value),
    proxytype: "ValueProxy",
    exposed: ManagedValue.exposed,
  },
  {
    typeid: "Condition",
    callable: (lock: unknown) => new ManagedCondition(lock),
    proxytype: "ConditionProxy",
    exposed: ManagedCondition.exposed,
    referents: true,
  },
  {
    typeid: "Barrier",
    callable: (parties: unknown, action: unknown, timeout: unknown) => new ManagedBarrier(parties, action, timeout),
    proxytype: "BarrierProxy",
    exposed: ManagedBarrier.exposed,
  },
  {
    typeid: "Pool",
    callable: (processes: unknown, initializer: unknown) => new ManagedPool(processes, initializer),
    proxytype: "PoolProxy",
    exposed: ManagedPool.exposed,
    methodToTypeid: {
      apply_async: "AsyncResult",
      map_async: "AsyncResult",
      starmap_async: "AsyncResult",
      imap: "Iterator",
      imap_unordered: "Iterator",
    },
  },
  // What a Pool's methods answer with, kept in the server (Python's, with no create method).
  { typeid: "AsyncResult", proxytype: "AutoProxy", createMethod: false },
  { typeid: "Iterator", proxytype: "IteratorProxy", createMethod: false },
  {
    typeid: "Array",
    callable: (typecode: unknown, sequence: unknown) => new ManagedArray(typecode, sequence),
    proxytype: "ArrayProxy",
    exposed: ManagedArray.exposed,
  },
].map((entry) => ({ createMethod: true, ...entry }));

/** Python's `public_methods(obj)`: the names of its methods that do not start with `_`. */
export function publicMethods(object: unknown): string[] {
  const names = new Set<string>();
  for (let o = object; o !== null && o !== undefined && o !== Object.prototype; o = Object.getPrototypeOf(o)) {
    for (const name of Object.getOwnPropertyNames(o)) {
      if (name.startsWith("_") || name === "constructor") continue;
      const descriptor = Object.getOwnPropertyDescriptor(o, name);
      if (typeof descriptor?.value === "function") names.add(name);
    }
    if (typeof o !== "object") break;
  }
  return [...names].sort();
}
