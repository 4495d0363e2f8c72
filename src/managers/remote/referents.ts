/**
 * The objects a remote manager's server keeps for SyncManager's typeids,
 * with Python's method names and semantics (`__getitem__`, `setdefault`,
 * `get(block, timeout)` in seconds, `KeyError`…), so that a Python proxy
 * calls them as it would call a Python server's.
 *
 * A method that waits (a queue's `get`, a lock's `acquire`) is given the
 * call it serves: its wait ends when the calling connection closes, so a
 * client killed mid-call takes no item and holds no lock. The sequences
 * (`list`, `Array`) are in `sequence_referents.ts`, the objects that wait in
 * `waiting_referents.ts`.
 *
 * @module
 */
import { PyGlobal, PyObject, PyTuple, tuple } from "../../python/pickle.ts";
import { pythonError } from "./protocol.ts";

/** The call a method serves: the end of its connection, and the client (lease) behind it. */
export interface Call {
  /** Aborts when the calling connection closes. */
  readonly signal: AbortSignal;
  /** The lease of the calling client, or 0 for a client without one (a Python client). */
  readonly client: number;
  /** The calling connection's number: an RLock's owner, as Python's is the thread that serves it. */
  readonly connection: number;
}

/** A server-side object of a builtin typeid: its methods take the call first, then Python's positional arguments. */
export abstract class Referent {
  /** Python's parameter names of the methods that take keywords, in order: `get: ["block", "timeout"]`. */
  protected static parameters: Record<string, readonly string[]> = {};

  /** Calls `method` with Python's `*args, **kwds`. */
  invoke(method: string, call: Call, args: readonly unknown[], kwds: Record<string, unknown>): unknown {
    const run = (this as unknown as Record<string, (call: Call, ...args: unknown[]) => unknown>)[method];
    const names = (this.constructor as typeof Referent).parameters[method];
    const positional = [...args];
    for (const [key, value] of Object.entries(kwds)) {
      const at = names?.indexOf(key) ?? -1;
      if (at < 0) throw pythonError("TypeError", `${method}() got an unexpected keyword argument '${key}'`);
      while (positional.length < at) positional.push(undefined);
      positional[at] = value;
    }
    return run.call(this, call, ...positional);
  }

  /** What `#GETVALUE` (a proxy's `_getvalue()`) copies: the value as Python would pickle it. */
  abstract value(): unknown;

  /** Python's `repr()`, for `__repr__`/`__str__`. */
  repr(): string {
    return `<${this.constructor.name}>`;
  }

  /** The server let it go (its last reference went, or the server shut down): what it runs stops. */
  dispose(): void {}
}

// ---- Keys --------------------------------------------------------------------

/** A dict key as a Map key: plain data by value (a tuple key found again by an equal tuple), as Python hashes it. */
function keyOf(key: unknown): unknown {
  if (key === null || typeof key !== "object") return key;
  if (key instanceof PyTuple || Array.isArray(key)) return `\u0000tuple${JSON.stringify(key, bigints)}`;
  if (key instanceof Uint8Array) return `\u0000bytes${Array.from(key).join(",")}`;
  throw pythonError("TypeError", `unhashable type: '${key instanceof Map ? "dict" : typeof key}'`);
}

function bigints(_: string, value: unknown): unknown {
  return typeof value === "bigint" ? `${value}n` : value;
}

/**
 * Python's repr of a key, for KeyError's message.
 *
 * @example
 * ```ts
 * reprOf("a"); // "'a'"
 * ```
 */
export function reprOf(value: unknown): string {
  return typeof value === "string" ? `'${value}'` : String(value);
}

/** Entries of a dict as it arrives: a Map, a plain object, or a list of pairs. */
function entriesOf(value: unknown): Iterable<readonly [unknown, unknown]> {
  if (value === undefined || value === null) return [];
  if (value instanceof Map) return value;
  if (Array.isArray(value)) return value as [unknown, unknown][];
  if (typeof value === "object") return Object.entries(value);
  throw pythonError("TypeError", `cannot convert ${typeof value} to a dict`);
}

// ---- dict ----------------------------------------------------------------------

/**
 * Python's `dict`, as a server keeps it: serve one of your own with `register`.
 *
 * @example
 * ```ts
 * import { BaseManager, ManagedDict } from "@mp/multiprocessing/managers";
 * const shared = new ManagedDict();
 * const manager = new BaseManager({ address: ["127.0.0.1", 50000], authkey: "secret" });
 * manager.register("get_dict", () => shared, { proxytype: "DictProxy" });
 * await (await manager.getServer()).serveForever();
 * ```
 */
export class Dict extends Referent {
  protected static override parameters = { get: ["key", "default"], pop: ["key", "default"] };
  /** Exposed as Python's `DictProxy`. */
  static exposed: readonly string[] = [
    "__contains__",
    "__delitem__",
    "__getitem__",
    "__len__",
    "__setitem__",
    "clear",
    "copy",
    "get",
    "items",
    "keys",
    "pop",
    "popitem",
    "setdefault",
    "update",
    "values",
  ];
  #entries = new Map<unknown, [unknown, unknown]>();

  constructor(init?: unknown, kwds: Record<string, unknown> = {}) {
    super();
    this.update(undefined as never, init, kwds);
  }

  __contains__(_: Call, key: unknown): boolean {
    return this.#entries.has(keyOf(key));
  }
  __delitem__(_: Call, key: unknown): void {
    if (!this.#entries.delete(keyOf(key))) throw pythonError("KeyError", key);
  }
  __getitem__(_: Call, key: unknown): unknown {
    const entry = this.#entries.get(keyOf(key));
    if (!entry) throw pythonError("KeyError", key);
    return entry[1];
  }
  __len__(): number {
    return this.#entries.size;
  }
  __setitem__(_: Call, key: unknown, value: unknown): void {
    this.#entries.set(keyOf(key), [key, value]);
  }
  clear(): void {
    this.#entries.clear();
  }
  copy(): Map<unknown, unknown> {
    return new Map([...this.#entries.values()]);
  }
  get(_: Call, key: unknown, fallback: unknown = null): unknown {
    const entry = this.#entries.get(keyOf(key));
    return entry ? entry[1] : fallback;
  }
  items(): PyTuple[] {
    return [...this.#entries.values()].map(([key, value]) => tuple(key, value));
  }
  keys(): unknown[] {
    return [...this.#entries.values()].map(([key]) => key);
  }
  values(): unknown[] {
    return [...this.#entries.values()].map(([, value]) => value);
  }
  pop(_: Call, key: unknown, ...fallback: unknown[]): unknown {
    const at = keyOf(key);
    const entry = this.#entries.get(at);
    if (!entry) {
      if (fallback.length && fallback[0] !== undefined) return fallback[0];
      throw pythonError("KeyError", key);
    }
    this.#entries.delete(at);
    return entry[1];
  }
  popitem(): PyTuple {
    const last = [...this.#entries.keys()].pop();
    if (last === undefined && this.#entries.size === 0) throw pythonError("KeyError", "popitem(): dictionary is empty");
    const [key, value] = this.#entries.get(last)!;
    this.#entries.delete(last);
    return tuple(key, value);
  }
  setdefault(_: Call, key: unknown, fallback: unknown = null): unknown {
    const at = keyOf(key);
    const entry = this.#entries.get(at);
    if (entry) return entry[1];
    this.#entries.set(at, [key, fallback]);
    return fallback;
  }
  update(_: Call, other?: unknown, kwds: Record<string, unknown> = {}): void {
    for (const [key, value] of entriesOf(other)) this.#entries.set(keyOf(key), [key, value]);
    for (const [key, value] of Object.entries(kwds)) this.#entries.set(key, [key, value]);
  }
  value(): Map<unknown, unknown> {
    return this.copy();
  }
  override repr(): string {
    return `{${[...this.#entries.values()].map(([k, v]) => `${reprOf(k)}: ${reprOf(v)}`).join(", ")}}`;
  }
  /** `update(**kwds)` arrives as keywords: they are the dict's, not parameters. */
  override invoke(method: string, call: Call, args: readonly unknown[], kwds: Record<string, unknown>): unknown {
    if (method === "update") return this.update(call, args[0], kwds);
    return super.invoke(method, call, args, kwds);
  }
}

// ---- Namespace ---------------------------------------------------------------------

/**
 * Python's `multiprocessing.managers.Namespace`, as a server keeps it.
 *
 * @example
 * ```ts
 * import { ManagedNamespace } from "@mp/multiprocessing/managers";
 * const ns = new ManagedNamespace({ x: 1 });
 * console.log(ns.repr()); // Namespace(x=1)
 * ```
 */
export class Namespace extends Referent {
  /** Exposed as Python's `NamespaceProxy`. */
  static exposed: readonly string[] = ["__getattribute__", "__setattr__", "__delattr__"];
  #attributes = new Map<string, unknown>();

  constructor(kwds: Record<string, unknown> = {}) {
    super();
    for (const [key, value] of Object.entries(kwds)) this.#attributes.set(key, value);
  }
  __getattribute__(_: Call, name: string): unknown {
    if (!this.#attributes.has(name)) {
      throw pythonError("AttributeError", `'Namespace' object has no attribute '${name}'`);
    }
    return this.#attributes.get(name);
  }
  __setattr__(_: Call, name: string, value: unknown): void {
    this.#attributes.set(String(name), value);
  }
  __delattr__(_: Call, name: string): void {
    if (!this.#attributes.delete(name)) throw pythonError("AttributeError", name);
  }
  /** Pickled as Python's Namespace: `Namespace.__new__(Namespace)`, its `__dict__` as state. */
  value(): PyObject {
    return new PyObject(
      new PyGlobal("multiprocessing.managers", "Namespace"),
      [],
      Object.fromEntries(this.#attributes),
    );
  }
  override repr(): string {
    return `Namespace(${[...this.#attributes].map(([k, v]) => `${k}=${reprOf(v)}`).join(", ")})`;
  }
}

// ---- Value ---------------------------------------------------------------------------

/**
 * Python's `multiprocessing.managers.Value`: a typecode and a value, `get`/`set`.
 *
 * @example
 * ```ts
 * import { ManagedValue } from "@mp/multiprocessing/managers";
 * const v = new ManagedValue("i", 3);
 * console.log(v.value()); // 3
 * ```
 */
export class ManagedValue extends Referent {
  static exposed: readonly string[] = ["get", "set"];
  readonly typecode: unknown;
  current: unknown;
  constructor(typecode: unknown, current: unknown) {
    super();
    this.typecode = typecode;
    this.current = current;
  }
  get(): unknown {
    return this.current;
  }
  set(_: Call, value: unknown): void {
    this.current = value;
  }
  value(): unknown {
    return this.current;
  }
}
