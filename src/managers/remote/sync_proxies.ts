/**
 * The proxies of SyncManager's `Barrier` and `Array` over a socket:
 * Python's `BarrierProxy` and `ArrayProxy`, with the names of the
 * in-program manager's objects (`nWaiting`, `toArray`) and their errors
 * (`BrokenBarrierError`, `RangeError` for an index out of range), async.
 * Timeouts are milliseconds here, seconds on the wire. They work against
 * our server and against Python's.
 *
 * @module
 */
import { PyGlobal, PyObject } from "../../python/pickle.ts";
import { readWait, type WaitOptions } from "../../wait.ts";
import { RemoteProxy } from "./proxies.ts";
import { describe } from "./protocol.ts";
import { remoteCall } from "./proxy_handles.ts";

/**
 * A wait's timeout as Python takes it: seconds, or `None` for none.
 *
 * @example
 * ```ts
 * seconds(1500); // 1.5
 * ```
 */
export function seconds(timeout: number): number | null {
  return timeout === Infinity ? null : timeout / 1_000;
}

/**
 * A barrier in a remote manager (`manager.Barrier(parties)`), Python's
 * `BarrierProxy`: the in-program `Barrier`'s names, async (`await
 * barrier.parties`, each a round trip as Python's properties are).
 * Aborting a `wait` (`{ signal }`) closes its connection; a server of ours
 * then breaks the barrier, since this party can no longer arrive.
 *
 * @example
 * ```ts
 * import { SyncManager } from "@mp/multiprocessing/managers";
 * await using manager = new SyncManager({ address: ["127.0.0.1", 0] });
 * await manager.start();
 * const barrier = manager.Barrier(1);
 * console.log(await barrier.wait()); // 0
 * ```
 */
export class RemoteBarrierProxy extends RemoteProxy {
  /** How many must wait for the barrier to trip. */
  get parties(): Promise<number> {
    return remoteCall(this, "__getattribute__", ["parties"]) as Promise<number>;
  }

  /** How many wait now. */
  get nWaiting(): Promise<number> {
    return remoteCall(this, "__getattribute__", ["n_waiting"]) as Promise<number>;
  }

  /** Whether it is broken (aborted, or a wait timed out). */
  get broken(): Promise<boolean> {
    return remoteCall(this, "__getattribute__", ["broken"]) as Promise<boolean>;
  }

  /**
   * Waits until `parties` parties wait; this one's arrival index, from 0 to
   * `parties - 1`.
   *
   * @throws {BrokenBarrierError} when the barrier is or becomes broken, or
   * `timeout` ms (by default the barrier's own) pass, which breaks it for
   * every party.
   */
  wait(timeout?: WaitOptions): Promise<number> {
    const wait = readWait(timeout, "Barrier.wait");
    wait.signal?.throwIfAborted();
    // No timeout: None, with which the server applies the barrier's own (as Python's, none can override it).
    return remoteCall(this, "wait", [seconds(wait.timeout)], wait.signal) as Promise<number>;
  }

  /** Breaks the barrier: every party waiting now and later gets `BrokenBarrierError` until `reset()`. */
  async abort(): Promise<void> {
    await remoteCall(this, "abort", []);
  }

  /** Back to the empty, unbroken barrier; the parties waiting now get `BrokenBarrierError`. */
  async reset(): Promise<void> {
    await remoteCall(this, "reset", []);
  }
}

/** How Python's `array.tobytes()` lays out each typecode's item (a 64-bit Linux or macOS host, little-endian). */
const ITEM_FORMATS: Record<string, [(view: DataView, at: number) => number | bigint | string, number]> = {
  b: [(v, at) => v.getInt8(at), 1],
  B: [(v, at) => v.getUint8(at), 1],
  u: [(v, at) => String.fromCodePoint(v.getUint32(at, true)), 4],
  h: [(v, at) => v.getInt16(at, true), 2],
  H: [(v, at) => v.getUint16(at, true), 2],
  i: [(v, at) => v.getInt32(at, true), 4],
  I: [(v, at) => v.getUint32(at, true), 4],
  l: [(v, at) => v.getBigInt64(at, true), 8],
  L: [(v, at) => v.getBigUint64(at, true), 8],
  q: [(v, at) => v.getBigInt64(at, true), 8],
  Q: [(v, at) => v.getBigUint64(at, true), 8],
  f: [(v, at) => v.getFloat32(at, true), 4],
  d: [(v, at) => v.getFloat64(at, true), 8],
};

/** A 64-bit item as pickle gives a Python int: a number when it is exact, else a bigint. */
function intOf(value: number | bigint | string): unknown {
  if (typeof value !== "bigint") return value;
  return value >= -(2n ** 53n) && value <= 2n ** 53n ? Number(value) : value;
}

/**
 * The items of a Python `array.array` as a manager sends it: `array.array(typecode, list)` from our server,
 * `array.array(typecode, bytes)` from Python's (its managers register that reduction for arrays, the bytes
 * of `tobytes()` in the server's own layout).
 */
export function arrayItems(value: unknown): unknown[] {
  if (value instanceof PyObject && value.cls instanceof PyGlobal && `${value.cls}` === "array.array") {
    const [typecode, items] = value.args;
    if (Array.isArray(items)) return [...items];
    const format = ITEM_FORMATS[String(typecode)];
    if (format && items instanceof Uint8Array) {
      const [read, size] = format;
      const view = new DataView(items.buffer, items.byteOffset, items.byteLength);
      return Array.from({ length: Math.floor(items.byteLength / size) }, (_, i) => intOf(read(view, i * size)));
    }
  }
  throw new TypeError(`the manager sent no array but ${describe(value)}`);
}

/** Python's `slice(start, stop, step)`, as a request carries it. */
function pySlice(start?: number, stop?: number, step?: number): PyObject {
  const slice = new PyObject(new PyGlobal("builtins", "slice"), [start ?? null, stop ?? null, step ?? null]);
  slice.via = "reduce";
  return slice;
}

/**
 * An array in a remote manager (`manager.Array("i", [1, 2, 3])`), Python's
 * `ArrayProxy` (`len(a)`, `a[i]`, `a[i] = x`, `a[i:j:k]`) with the
 * in-program `SharedArray`'s names, async.
 *
 * @example
 * ```ts
 * import { SyncManager } from "@mp/multiprocessing/managers";
 * await using manager = new SyncManager({ address: ["127.0.0.1", 0] });
 * await manager.start();
 * const a = manager.Array("i", [1, 2, 3]);
 * await a.set(0, 5);
 * console.log(await a.length, await a.get(-1), await a.slice(0, 2)); // 3 3 [5, 2]
 * ```
 */
export class RemoteArrayProxy<T = number> extends RemoteProxy {
  /** How many items it holds (`len(a)`). */
  get length(): Promise<number> {
    return remoteCall(this, "__len__", []) as Promise<number>;
  }

  /**
   * The item at `index` (negative counts from the end).
   *
   * @throws {RangeError} when the index is out of range.
   * @throws {TypeError} when it is no integer.
   */
  get(index: number): Promise<T> {
    return remoteCall(this, "__getitem__", [index]) as Promise<T>;
  }

  /**
   * Sets the item at `index`, checked against the typecode by the server.
   *
   * @throws {RangeError} when the index is out of range.
   * @throws {TypeError} when the value does not fit the typecode.
   */
  async set(index: number, value: T): Promise<void> {
    await remoteCall(this, "__setitem__", [index, value]);
  }

  /** The items from `start` to `stop` by `step`, with Python's slice rules (`a[start:stop:step]`). */
  async slice(start?: number, stop?: number, step?: number): Promise<T[]> {
    return arrayItems(await remoteCall(this, "__getitem__", [pySlice(start, stop, step)])) as T[];
  }

  /** A copy of the items (`a._getvalue()`). */
  async toArray(): Promise<T[]> {
    return arrayItems(await remoteCall(this, "#GETVALUE", [])) as T[];
  }
}
