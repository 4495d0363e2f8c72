/**
 * The objects a remote manager's server keeps for SyncManager's typeids,
 * with Python's method names and semantics (`__getitem__`, `setdefault`,
 * `get(block, timeout)` in seconds, `KeyError`…), so that a Python proxy
 * calls them as it would call a Python server's.
 *
 * A method that waits (a queue's `get`, a lock's `acquire`) is given the
 * call it serves: its wait ends when the calling connection closes, so a
 * client killed mid-call takes no item and holds no lock.
 *
 * @module
 */
import { same } from "../../managers.ts";
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

/** Python's repr of a key, for KeyError's message. */
function reprOf(value: unknown): string {
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

/** Python's `list(value)` for what arrives: a list or tuple, a set, a `range`, a dict's keys. */
function itemsOf(value: unknown, what: string): unknown[] {
  if (Array.isArray(value)) return value;
  if (value instanceof Set) return [...value];
  if (value instanceof Map) return [...value.keys()];
  if (value instanceof PyObject && value.cls.module === "builtins" && value.cls.name === "range") {
    const [start, stop, step = 1] = value.args.map(Number);
    const items: number[] = [];
    for (let i = start; step > 0 ? i < stop : i > stop; i += step) items.push(i);
    return items;
  }
  if (value !== null && typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.keys(value);
  }
  throw pythonError("TypeError", `'${what}' object is not iterable`);
}

// ---- list ----------------------------------------------------------------------

/** Python's equality for plain data: `[1, 2] == (1, 2)` is false in Python, but both arrive as arrays here. */
function equal(a: unknown, b: unknown): boolean {
  return same(a, b);
}

/**
 * Python's `list`, as a server keeps it.
 *
 * @example
 * ```ts
 * import { ManagedList } from "@mp/multiprocessing/managers";
 * const list = new ManagedList([1, 2]);
 * console.log(list.value()); // [1, 2]
 * ```
 */
export class List extends Referent {
  protected static override parameters = { sort: ["key", "reverse"] };
  /** Exposed as Python's `ListProxy`. */
  static exposed: readonly string[] = [
    "__add__",
    "__contains__",
    "__delitem__",
    "__getitem__",
    "__len__",
    "__mul__",
    "__rmul__",
    "__setitem__",
    "append",
    "count",
    "extend",
    "index",
    "insert",
    "pop",
    "remove",
    "reverse",
    "sort",
    "__imul__",
  ];
  #items: unknown[];

  constructor(init: unknown = []) {
    super();
    this.#items = [...itemsOf(init, typeof init)];
  }

  #at(index: unknown, what: string): number {
    if (typeof index !== "number" && typeof index !== "bigint") {
      throw pythonError("TypeError", `list indices must be integers, not ${typeof index}`);
    }
    const n = Number(index);
    const at = n < 0 ? this.#items.length + n : n;
    if (at < 0 || at >= this.#items.length) throw pythonError("IndexError", `${what} index out of range`);
    return at;
  }
  __add__(_: Call, other: unknown[]): unknown[] {
    return [...this.#items, ...other];
  }
  __contains__(_: Call, value: unknown): boolean {
    return this.#items.some((item) => equal(item, value));
  }
  __delitem__(_: Call, index: unknown): void {
    this.#items.splice(this.#at(index, "list assignment"), 1);
  }
  __getitem__(_: Call, index: unknown): unknown {
    return this.#items[this.#at(index, "list")];
  }
  __len__(): number {
    return this.#items.length;
  }
  __mul__(_: Call, n: number): unknown[] {
    return Array.from({ length: Math.max(0, Number(n)) }, () => this.#items).flat();
  }
  __rmul__(call: Call, n: number): unknown[] {
    return this.__mul__(call, n);
  }
  __imul__(call: Call, n: number): unknown[] {
    this.#items = this.__mul__(call, n);
    return this.#items;
  }
  __setitem__(_: Call, index: unknown, value: unknown): void {
    this.#items[this.#at(index, "list assignment")] = value;
  }
  append(_: Call, value: unknown): void {
    this.#items.push(value);
  }
  count(_: Call, value: unknown): number {
    return this.#items.filter((item) => equal(item, value)).length;
  }
  extend(_: Call, values: unknown): void {
    this.#items.push(...itemsOf(values, typeof values));
  }
  index(_: Call, value: unknown): number {
    const at = this.#items.findIndex((item) => equal(item, value));
    if (at < 0) throw pythonError("ValueError", `${reprOf(value)} is not in list`);
    return at;
  }
  insert(_: Call, index: number, value: unknown): void {
    const n = Number(index);
    const at = n < 0 ? Math.max(0, this.#items.length + n) : Math.min(n, this.#items.length);
    this.#items.splice(at, 0, value);
  }
  pop(_: Call, index: number = -1): unknown {
    if (this.#items.length === 0) throw pythonError("IndexError", "pop from empty list");
    return this.#items.splice(this.#at(index, "pop"), 1)[0];
  }
  remove(_: Call, value: unknown): void {
    const at = this.#items.findIndex((item) => equal(item, value));
    if (at < 0) throw pythonError("ValueError", "list.remove(x): x not in list");
    this.#items.splice(at, 1);
  }
  reverse(): void {
    this.#items.reverse();
  }
  sort(_: Call, key: unknown = null, reverse: unknown = false): void {
    if (key !== null && key !== undefined) {
      throw pythonError("TypeError", "sort(key=...) cannot be sent to a TypeScript server");
    }
    this.#items.sort((a, b) => (a as number) < (b as number) ? -1 : (a as number) > (b as number) ? 1 : 0);
    if (reverse) this.#items.reverse();
  }
  value(): unknown[] {
    return [...this.#items];
  }
  override repr(): string {
    return `[${this.#items.map(reprOf).join(", ")}]`;
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

// ---- Array ---------------------------------------------------------------------

/** `array` typecodes of integers; the others (`f`, `d`) hold floats. */
const INTEGER_CODES = "bBhHiIlLqQ";

/**
 * Python's `SyncManager.Array(typecode, sequence)` as a server keeps it: an
 * `array.array`, exposed as Python's `ArrayProxy` (`len(a)`, `a[i]`,
 * `a[i] = x`, `a[i:j]`). A slice and `_getvalue()` come back as
 * `array.array(typecode, [...])`, which Python rebuilds as its own array.
 *
 * @example
 * ```ts
 * import { ManagedArray } from "@mp/multiprocessing/managers";
 * const a = new ManagedArray("i", [1, 2, 3]);
 * console.log(a.__len__()); // 3
 * ```
 */
export class ManagedArray extends Referent {
  /** Exposed as Python's `ArrayProxy`. */
  static exposed: readonly string[] = ["__len__", "__getitem__", "__setitem__"];
  /** The `array` typecode: `i`, `d`, … */
  readonly typecode: string;
  #items: unknown[];

  /** @param typecode an `array` typecode @param sequence the items */
  constructor(typecode: unknown, sequence: unknown = []) {
    super();
    if (typeof typecode !== "string" || !`${INTEGER_CODES}fd`.includes(typecode) || typecode.length !== 1) {
      throw pythonError("ValueError", "bad typecode (must be b, B, u, h, H, i, I, l, L, q, Q, f or d)");
    }
    this.typecode = typecode;
    this.#items = [...itemsOf(sequence, typeof sequence)].map((item) => this.#checked(item));
  }

  #checked(item: unknown): unknown {
    const integer = INTEGER_CODES.includes(this.typecode);
    if (typeof item === "bigint" && integer) return item;
    if (typeof item !== "number") {
      throw pythonError("TypeError", `must be real number, not ${item === null ? "NoneType" : typeof item}`);
    }
    if (integer && !Number.isInteger(item)) {
      throw pythonError("TypeError", "'float' object cannot be interpreted as an integer");
    }
    return item;
  }

  #array(items: unknown[]): PyObject {
    const array = new PyObject(new PyGlobal("array", "array"), [this.typecode, items]);
    array.via = "reduce";
    return array;
  }

  #at(index: unknown, what: string): number {
    if (typeof index !== "number" && typeof index !== "bigint") {
      throw pythonError("TypeError", "array indices must be integers");
    }
    const n = Number(index);
    const at = n < 0 ? this.#items.length + n : n;
    if (at < 0 || at >= this.#items.length) throw pythonError("IndexError", `${what} index out of range`);
    return at;
  }

  /** `len(a)`. */
  __len__(): number {
    return this.#items.length;
  }

  /** `a[i]`, or `a[i:j:k]` as an `array.array`. */
  __getitem__(_: Call, index: unknown): unknown {
    const slice = sliceOf(index);
    if (!slice) return this.#items[this.#at(index, "array")];
    const [start, stop, step] = indices(slice, this.#items.length);
    const picked: unknown[] = [];
    for (let i = start; step > 0 ? i < stop : i > stop; i += step) picked.push(this.#items[i]);
    return this.#array(picked);
  }

  /** `a[i] = x`, `x` checked against the typecode. */
  __setitem__(_: Call, index: unknown, value: unknown): void {
    if (sliceOf(index)) throw pythonError("TypeError", "can only assign a single item to a served array's index");
    this.#items[this.#at(index, "array assignment")] = this.#checked(value);
  }

  /** `_getvalue()`: an `array.array`. */
  value(): unknown {
    return this.#array([...this.#items]);
  }

  /** Python's repr. */
  override repr(): string {
    return `array('${this.typecode}', [${this.#items.join(", ")}])`;
  }
}

/** A Python `slice(start, stop, step)` as it arrives, or undefined. */
function sliceOf(value: unknown): unknown[] | undefined {
  if (!(value instanceof PyObject) || !(value.cls instanceof PyGlobal)) return undefined;
  return value.cls.module === "builtins" && value.cls.name === "slice" ? value.args : undefined;
}

/** Python's `slice.indices(length)`. */
function indices([start, stop, step]: unknown[], length: number): [number, number, number] {
  const by = step === null || step === undefined ? 1 : Number(step);
  if (by === 0) throw pythonError("ValueError", "slice step cannot be zero");
  const clamp = (value: unknown, fallback: number): number => {
    if (value === null || value === undefined) return fallback;
    const n = Number(value);
    const at = n < 0 ? n + length : n;
    return by > 0 ? Math.min(Math.max(at, 0), length) : Math.min(Math.max(at, -1), length - 1);
  };
  return [clamp(start, by > 0 ? 0 : length - 1), clamp(stop, by > 0 ? length : -1), by];
}
