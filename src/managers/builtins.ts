/**
 * The objects every manager serves without a registration: Python's dict,
 * list and Namespace, as a Map, an array and a null-prototype object, with
 * the methods their proxies call (Python's semantics: negative indexes,
 * `==` by value, KeyError and IndexError as RangeError). The server looks a
 * method up here by name; nothing else knows what these methods do.
 *
 * @module
 */
import type { Builtin } from "./wire.ts";

/** A typeid's methods: each takes its object first, then the call's arguments. */
// deno-lint-ignore no-explicit-any
export type Methods<T> = Record<string, (target: T, ...args: any[]) => unknown>;

/** Python's index rules: negative counts from the end; out of range is an IndexError (a RangeError here). */
function position(list: unknown[], index: number, what: string): number {
  if (!Number.isInteger(index)) throw new TypeError(`list.${what}: index must be an integer, got ${String(index)}`);
  const at = index < 0 ? list.length + index : index;
  if (at < 0 || at >= list.length) throw new RangeError(`list.${what}: index ${index} out of range`);
  return at;
}

/** Python's `==` for what a proxy can hold: plain data compared by value, as the server only ever sees copies. */
export function same(a: unknown, b: unknown): boolean {
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
  slice: (l, start?: number, end?: number) => {
    for (const bound of [start, end]) {
      if (bound !== undefined && !Number.isInteger(bound)) {
        throw new TypeError(`list.slice: bounds must be integers, got ${String(bound)}`);
      }
    }
    // Python's l[a:b] and Array.prototype.slice agree: negative bounds count from the end, out of range clamps.
    return l.slice(start, end);
  },
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

/** The methods of each builtin typeid, by name. */
export const methodsOf: Record<Builtin, Methods<never>> = {
  dict: dictMethods,
  list: listMethods,
  Namespace: namespaceMethods,
};

/** A new object of a builtin typeid, from the initial value that CREATE carried. */
export function create(typeid: Builtin, init: unknown): unknown {
  if (typeid === "dict") return new Map(init as Iterable<[unknown, unknown]>);
  if (typeid === "list") return [...(init as Iterable<unknown>)];
  return Object.assign(Object.create(null), init);
}
