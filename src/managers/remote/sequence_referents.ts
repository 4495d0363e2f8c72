/**
 * The sequences a remote manager's server keeps for SyncManager's typeids
 * `list` and `Array`, with Python's method names and semantics (indices and
 * slices, `extend`, `index`, `remove`, an array's typecode), beside the
 * mappings and single values of `referents.ts`, whose `Referent` they extend.
 *
 * @module
 */
import { same } from "../../managers.ts";
import { PyGlobal, PyObject } from "../../python/pickle.ts";
import { pythonError } from "./protocol.ts";
import { type Call, Referent, reprOf } from "./referents.ts";

/**
 * Python's `list(value)` for what arrives: a list or tuple, a set, a `range`, a dict's keys.
 *
 * @example
 * ```ts
 * itemsOf(new Set([1, 2]), "set"); // [1, 2]
 * ```
 */
export function itemsOf(value: unknown, what: string): unknown[] {
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
