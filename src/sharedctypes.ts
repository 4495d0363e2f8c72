/**
 * `Value`, `RawValue`, `SharedArray` and `RawArray`, as Python's
 * `multiprocessing.sharedctypes`: typed numbers in a SharedArrayBuffer that
 * every process holding the object reads and writes directly.
 *
 * Typecodes are Python's ctypes letters. `q`/`Q` read as `bigint`, `c` as a
 * one-character string; `l`/`L` are 32-bit (C's minimum, and Windows' size:
 * use `q` for 64 bits). A number stores as C (and ctypes, and a typed array)
 * stores it: an integer that does not fit keeps its low bits
 * (`Value("b", 300).value === 44`), `f` rounds to a 32-bit float. A value of
 * the wrong type (a string into `i`, 1.5 into `i`) throws `TypeError`.
 *
 * A synchronized object (the default, `lock` not false) takes its lock for
 * each item access, as Python's synchronized wrappers do: a read never tears
 * (a `d` or `q` written by another process) and waits for a critical section
 * that another process is in. A read-modify-write such as `v.value += 1` still
 * needs the lock around it, as in Python:
 * `using _ = v.getLock().guardSync(); v.value += 1` (an access inside that
 * block, by the holder, does not take the lock again). Raw objects and the
 * `view` typed arrays access memory directly.
 *
 * @module
 */
import { adapter } from "./adapters/mod.ts";
import { blockOnPlanUntil, TIMED_OUT } from "./blocking.ts";
import { RLock } from "./locks.ts";
import { heldDepth, isOwnedLock, type SemLock, takePlan } from "./semlock.ts";
import { dump, load, reduce, type Reduction, registerKind } from "./reduction.ts";
import { adopted, reviving } from "./revival.ts";
import {
  type AnyView,
  type Codec,
  codecOf,
  codecs,
  describe,
  type InputOf,
  type ItemOf,
  readItem,
  type Typecode,
  type ViewOf,
  writeItem,
} from "./typecodes.ts";

export type { InputOf, ItemOf, Typecode, ViewOf };
import { deadline } from "./wait.ts";

/**
 * How long the main thread spins for a lock that another process holds before
 * it gives up with an error. It must not block, and while it spins it cannot
 * see that the holder ended (its parent records that on its event loop), so
 * an unbounded spin could hang the program. Critical sections around a Value
 * are microseconds long; one that takes a second is waited for with
 * `await v.getLock().guard()` instead.
 */
const MAIN_SPIN_MS = 1_000;

let mayBlock: boolean | undefined;

/** Takes `lock` for one item access, unless this process holds it already; returns whether to release it. */
function takeForAccess(lock: SemLock, what: string): boolean {
  if (isOwnedLock(lock) && heldDepth(lock) > 0) return false;
  mayBlock ??= adapter.parent() !== null;
  if (mayBlock) return lock.acquireSync();
  // On the main thread by spinning instead of sleeping.
  const taken = blockOnPlanUntil(takePlan(lock, { timeout: Infinity }), deadline(MAIN_SPIN_MS), what, true);
  if (taken !== TIMED_OUT && taken) return true;
  throw new Error(
    `${what}: another process has held the lock for over ${MAIN_SPIN_MS} ms, and the main thread must not block; ` +
      `wait for it with \`using _ = await x.getLock().guard()\` and access it inside that block`,
  );
}

/** `body()` under `lock` (if any), as Python's synchronized wrapper does for each access. */
function synchronized<R>(lock: SemLock | null, what: string, body: () => R): R {
  if (lock === null || !takeForAccess(lock, what)) return body();
  try {
    return body();
  } finally {
    lock.release();
  }
}

/** The `lock` option: `true` for a new RLock, `false` for none, or a lock to share. */
export type LockOption = boolean | SemLock;

function lockFor(option: LockOption | undefined, what: string): SemLock | null {
  if (option === undefined || option === true) return new RLock();
  if (option === false) return null;
  if (typeof option === "object" && option !== null && typeof (option as SemLock).acquire === "function") return option;
  throw new TypeError(`${what}: lock must be true, false, or a Lock/RLock, got ${describe(option)}`);
}

interface State {
  typecode: Typecode;
  buffer: SharedArrayBuffer;
  length: number;
  lock: unknown;
}

function reduced(kind: string, typecode: Typecode, view: AnyView, lock: SemLock | null): Reduction {
  const state: State = {
    typecode,
    buffer: view.buffer as SharedArrayBuffer,
    length: view.length,
    lock: lock && dump(lock, "lock").data,
  };
  return { kind, state };
}

function revivedLock(state: State): SemLock | null {
  return state.lock === null ? null : load(state.lock, true) as SemLock;
}

function noLock(what: string): never {
  throw new Error(`${what} was created with { lock: false } and has no lock`);
}

/**
 * One typed number (or character) in shared memory, with a lock (an
 * {@linkcode RLock} unless `{ lock }` says otherwise), as Python's
 * `multiprocessing.Value`.
 *
 * @throws {TypeError} for an unknown typecode or a value of the wrong type.
 *
 * @example
 * ```ts
 * import { Process, Value } from "@mp/multiprocessing";
 *
 * export function bump(counter: Value<"i">) {
 *   for (let i = 0; i < 10_000; i++) {
 *     using _held = counter.getLock().guardSync();
 *     counter.value += 1;
 *   }
 * }
 *
 * if (import.meta.main) {
 *   const counter = new Value("i", 0);
 *   const ps = [1, 2].map(() => new Process({ target: bump, args: [counter] }));
 *   for (const p of ps) p.start();
 *   for (const p of ps) await p.join();
 *   console.log(counter.value); // 20000
 * }
 * ```
 */
export class Value<T extends Typecode = Typecode> {
  #codec: Codec;
  #view: AnyView;
  #lock: SemLock | null;
  #typecode: T;

  /** One item of `typecode`, set to `initial` (zero by default), guarded by `lock` (a new RLock by default). */
  constructor(typecode: T, initial?: InputOf<T>, options: { lock?: LockOption } = {}) {
    const given = adopted<State>();
    if (given) {
      this.#typecode = given.typecode as T;
      this.#codec = codecs[given.typecode];
      this.#view = new this.#codec.array(given.buffer);
      this.#lock = revivedLock(given);
      return;
    }
    const what = new.target === RawValue ? "new RawValue" : "new Value";
    this.#codec = codecOf(typecode, what);
    this.#typecode = typecode;
    const raw = initial === undefined
      ? (typecode === "q" || typecode === "Q" ? 0n : 0)
      : this.#codec.check(initial, what);
    this.#view = new this.#codec.array(new SharedArrayBuffer(this.#codec.array.BYTES_PER_ELEMENT));
    writeItem(this.#codec, this.#view, 0, raw);
    this.#lock = lockFor(options.lock, what);
  }

  /** The typecode it was created with. */
  get typecode(): T {
    return this.#typecode;
  }

  /** The shared value; with a lock, each read and each write takes it. */
  get value(): ItemOf<T> {
    return synchronized(this.#lock, "Value.value", () => readItem(this.#codec, this.#view, 0)) as ItemOf<T>;
  }
  set value(value: InputOf<T>) {
    const raw = this.#codec.check(value, "Value.value");
    synchronized(this.#lock, "Value.value", () => writeItem(this.#codec, this.#view, 0, raw));
  }

  /** A typed array of length 1 over the shared value. */
  get view(): ViewOf<T> {
    return this.#view as ViewOf<T>;
  }

  /**
   * The lock that guards compound updates.
   *
   * @throws {Error} when it was created with `{ lock: false }` (a RawValue).
   *
   * @example
   * ```ts
   * import { Value } from "@mp/multiprocessing";
   * const v = new Value("d", 1.5);
   * await v.getLock().acquire();
   * v.value *= 2;
   * v.getLock().release();
   * console.log(v.value); // 3
   * ```
   */
  getLock(): SemLock {
    return this.#lock ?? noLock("this Value");
  }

  /**
   * Sends the shared memory and the lock.
   *
   * @ignore
   */
  [reduce](): Reduction {
    return reduced(this instanceof RawValue ? "@mp/RawValue" : "@mp/Value", this.#typecode, this.#view, this.#lock);
  }

  /** Shows the typecode and value, as Python's repr does. */
  toString(): string {
    return `<${this instanceof RawValue ? "RawValue" : "Value"}('${this.#typecode}', ${describe(this.value)})>`;
  }
}

/**
 * A {@linkcode Value} without a lock (Python's `RawValue`).
 *
 * @example
 * ```ts
 * import { RawValue } from "@mp/multiprocessing";
 * const flag = new RawValue("B", 1);
 * console.log(flag.value); // 1
 * ```
 */
export class RawValue<T extends Typecode = Typecode> extends Value<T> {
  /** One item of `typecode`, set to `initial` (zero by default), without a lock. */
  constructor(typecode: T, initial?: InputOf<T>) {
    super(typecode, initial, { lock: false });
  }
}

/**
 * A fixed-length array of typed numbers (or characters) in shared memory,
 * with a lock, as Python's `multiprocessing.Array` (renamed so as not to
 * shadow the global `Array`). Negative indexes count from the end, as in
 * Python.
 *
 * @throws {TypeError} for an unknown typecode or an item of the wrong type.
 * @throws {RangeError} for a negative size.
 *
 * @example
 * ```ts
 * import { SharedArray } from "@mp/multiprocessing";
 * const a = new SharedArray("i", [1, 2, 3]);
 * a.set(-1, 30);
 * console.log(a.toArray()); // [1, 2, 30]
 * console.log(new SharedArray("d", 4).length); // 4
 * ```
 */
export class SharedArray<T extends Typecode = Typecode> {
  #codec: Codec;
  #view: AnyView;
  #lock: SemLock | null;
  #typecode: T;

  /** `size` zeros, or the given items, of `typecode`, guarded by `lock` (a new RLock by default). */
  constructor(typecode: T, sizeOrValues: number | Iterable<InputOf<T>>, options: { lock?: LockOption } = {}) {
    const given = adopted<State>();
    if (given) {
      this.#typecode = given.typecode as T;
      this.#codec = codecs[given.typecode];
      this.#view = new this.#codec.array(given.buffer, 0, given.length);
      this.#lock = revivedLock(given);
      return;
    }
    const what = new.target === RawArray ? "new RawArray" : "new SharedArray";
    this.#codec = codecOf(typecode, what);
    this.#typecode = typecode;
    let items: Array<number | bigint> = [];
    let length: number;
    if (typeof sizeOrValues === "number") {
      if (!Number.isSafeInteger(sizeOrValues) || sizeOrValues < 0) {
        throw new RangeError(`${what}: size must be an integer >= 0, got ${sizeOrValues}`);
      }
      length = sizeOrValues;
    } else if (sizeOrValues !== null && typeof (sizeOrValues as Iterable<unknown>)?.[Symbol.iterator] === "function") {
      items = Array.from(sizeOrValues as Iterable<unknown>, (item, i) => this.#codec.check(item, `${what}: item ${i}`));
      length = items.length;
    } else {
      throw new TypeError(`${what}: give a size or an iterable of items, got ${describe(sizeOrValues)}`);
    }
    const bytes = Math.max(1, length) * this.#codec.array.BYTES_PER_ELEMENT;
    this.#view = new this.#codec.array(new SharedArrayBuffer(bytes), 0, length);
    items.forEach((raw, i) => writeItem(this.#codec, this.#view, i, raw));
    this.#lock = lockFor(options.lock, what);
  }

  /** The typecode it was created with. */
  get typecode(): T {
    return this.#typecode;
  }

  /** How many items it holds. */
  get length(): number {
    return this.#view.length;
  }

  /** A typed array over the shared items. */
  get view(): ViewOf<T> {
    return this.#view as ViewOf<T>;
  }

  #index(index: number, what: string): number {
    if (typeof index !== "number" || !Number.isInteger(index)) {
      throw new TypeError(`SharedArray.${what}: index must be an integer, got ${describe(index)}`);
    }
    const length = this.#view.length;
    const at = index < 0 ? index + length : index;
    if (at < 0 || at >= length) {
      throw new RangeError(`SharedArray.${what}: index ${index} is out of range for length ${length}`);
    }
    return at;
  }

  /**
   * The item at `index` (negative counts from the end).
   *
   * @throws {RangeError} when the index is out of range.
   *
   * @example
   * ```ts
   * import { SharedArray } from "@mp/multiprocessing";
   * console.log(new SharedArray("c", "abc").get(-1)); // "c"
   * ```
   */
  get(index: number): ItemOf<T> {
    const at = this.#index(index, "get");
    return synchronized(this.#lock, "SharedArray.get", () => readItem(this.#codec, this.#view, at)) as ItemOf<T>;
  }

  /**
   * Sets the item at `index` (negative counts from the end).
   *
   * @throws {RangeError} when the index is out of range.
   *
   * @example
   * ```ts
   * import { SharedArray } from "@mp/multiprocessing";
   * const a = new SharedArray("q", 2);
   * a.set(0, 2n ** 40n);
   * console.log(a.get(0)); // 1099511627776n
   * ```
   */
  set(index: number, value: InputOf<T>): void {
    const at = this.#index(index, "set");
    const raw = this.#codec.check(value, `SharedArray.set(${index})`);
    synchronized(this.#lock, "SharedArray.set", () => writeItem(this.#codec, this.#view, at, raw));
  }

  /**
   * A copy of the items as a plain array.
   *
   * @example
   * ```ts
   * import { SharedArray } from "@mp/multiprocessing";
   * console.log(new SharedArray("B", [1, 2]).toArray()); // [1, 2]
   * ```
   */
  toArray(): ItemOf<T>[] {
    // One lock for the whole copy, as Python's `a[:]`: a consistent snapshot.
    return synchronized(
      this.#lock,
      "SharedArray.toArray",
      () => Array.from({ length: this.#view.length }, (_, i) => readItem(this.#codec, this.#view, i) as ItemOf<T>),
    );
  }

  /** The items, in order (with a lock, each read takes it, as Python's iteration does). */
  *[Symbol.iterator](): IterableIterator<ItemOf<T>> {
    for (let i = 0; i < this.#view.length; i++) yield this.get(i);
  }

  /**
   * The lock that guards compound updates.
   *
   * @throws {Error} when it was created with `{ lock: false }` (a RawArray).
   *
   * @example
   * ```ts
   * import { SharedArray } from "@mp/multiprocessing";
   * const a = new SharedArray("i", 3);
   * using _held = await a.getLock().guard();
   * a.set(0, a.get(0) + 1);
   * ```
   */
  getLock(): SemLock {
    return this.#lock ?? noLock("this SharedArray");
  }

  /**
   * Sends the shared memory and the lock.
   *
   * @ignore
   */
  [reduce](): Reduction {
    return reduced(
      this instanceof RawArray ? "@mp/RawArray" : "@mp/SharedArray",
      this.#typecode,
      this.#view,
      this.#lock,
    );
  }

  /** Shows the typecode and items. */
  toString(): string {
    return `<${this instanceof RawArray ? "RawArray" : "SharedArray"}('${this.#typecode}', [${
      this.toArray().map(describe).join(", ")
    }])>`;
  }
}

/**
 * A {@linkcode SharedArray} without a lock (Python's `RawArray`).
 *
 * @example
 * ```ts
 * import { RawArray } from "@mp/multiprocessing";
 * const a = new RawArray("d", [0.5, 1.5]);
 * console.log(a.view[1]); // 1.5
 * ```
 */
export class RawArray<T extends Typecode = Typecode> extends SharedArray<T> {
  /** `size` zeros, or the given items, of `typecode`, without a lock. */
  constructor(typecode: T, sizeOrValues: number | Iterable<InputOf<T>>) {
    super(typecode, sizeOrValues, { lock: false });
  }
}

registerKind("@mp/Value", (state) => reviving(state, () => new Value("i")));
registerKind("@mp/RawValue", (state) => reviving(state, () => new RawValue("i")));
registerKind("@mp/SharedArray", (state) => reviving(state, () => new SharedArray("i", 0)));
registerKind("@mp/RawArray", (state) => reviving(state, () => new RawArray("i", 0)));
