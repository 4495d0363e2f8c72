/**
 * `ShareableList`, as Python's `multiprocessing.shared_memory.ShareableList`:
 * a fixed-length list of numbers, bigints, booleans, strings, bytes and
 * `null` stored in a {@linkcode SharedMemory} block, readable and writable
 * from every process that attaches to it by name.
 *
 * The block starts with a table (count, then type, offset, capacity and
 * length for each item) and then the items. Each item keeps the room it was
 * created with (8 bytes, or its byte length rounded up to 8): an item may
 * change type, but a string or bytes longer than that room throws, as in
 * Python. Like Python's, it has no lock: guard concurrent writes with one.
 *
 * @module
 */
import { reduce, type Reduction, registerKind } from "./reduction.ts";
import { SharedMemory } from "./shared_memory.ts";

/** What a {@linkcode ShareableList} can hold. */
export type ShareableItem = number | bigint | boolean | string | Uint8Array | null;

const NULL = 0;
const NUMBER = 1;
const BIGINT = 2;
const BOOLEAN = 3;
const STRING = 4;
const BYTES = 5;

const FIELDS = 4; // type, offset, capacity, length
const encoder = new TextEncoder();
const decoder = new TextDecoder();

function kindOf(item: unknown, where: string): number {
  if (item === null) return NULL;
  switch (typeof item) {
    case "number":
      return NUMBER;
    case "bigint":
      if (item < -(2n ** 63n) || item >= 2n ** 63n) throw new RangeError(`${where}: ${item} does not fit in 64 bits`);
      return BIGINT;
    case "boolean":
      return BOOLEAN;
    case "string":
      return STRING;
  }
  if (item instanceof Uint8Array) return BYTES;
  throw new TypeError(
    `${where}: a ShareableList holds numbers, bigints, booleans, strings, Uint8Arrays and null, got ${
      typeof item === "object" ? (item as object).constructor?.name ?? "an object" : typeof item
    }`,
  );
}

/** The bytes an item is stored as. */
function encode(item: ShareableItem, kind: number): Uint8Array {
  if (kind === STRING) return encoder.encode(item as string);
  if (kind === BYTES) return item as Uint8Array;
  const bytes = new Uint8Array(8);
  const view = new DataView(bytes.buffer);
  if (kind === NUMBER) view.setFloat64(0, item as number, true);
  else if (kind === BIGINT) view.setBigInt64(0, item as bigint, true);
  else if (kind === BOOLEAN) view.setUint8(0, item ? 1 : 0);
  return bytes;
}

function decode(bytes: Uint8Array, kind: number): ShareableItem {
  const copy = bytes.slice();
  if (kind === STRING) return decoder.decode(copy);
  if (kind === BYTES) return copy;
  const view = new DataView(copy.buffer);
  if (kind === NUMBER) return view.getFloat64(0, true);
  if (kind === BIGINT) return view.getBigInt64(0, true);
  if (kind === BOOLEAN) return view.getUint8(0) === 1;
  return null;
}

const roomFor = (length: number) => Math.max(8, Math.ceil(length / 8) * 8);

/**
 * A fixed-length list in shared memory. `new ShareableList(items)` creates
 * one (named `psm_…` unless `{ name }` is given); `new ShareableList(null,
 * { name })` attaches to an existing one. Negative indexes count from the end.
 *
 * @throws {TypeError} for an item of a type it cannot hold.
 *
 * @example
 * ```ts
 * import { ShareableList } from "@mp/multiprocessing";
 * const list = new ShareableList([1, "two", 3n, true, null]);
 * const same = new ShareableList(null, { name: list.shm.name });
 * same.set(1, "deux");
 * console.log(list.toArray()); // [1, "deux", 3n, true, null]
 * same.shm.close();
 * list.shm.close();
 * list.shm.unlink();
 * ```
 */
export class ShareableList {
  #shm: SharedMemory;
  #table: Int32Array;

  /** Creates a list holding `sequence`, or attaches to the list named `options.name` when `sequence` is null. */
  constructor(sequence?: Iterable<ShareableItem> | null, options: { name?: string } = {}) {
    if (sequence === undefined || sequence === null) {
      if (options.name === undefined) {
        throw new TypeError("new ShareableList: give items to create one, or { name } to attach");
      }
      this.#shm = new SharedMemory({ name: options.name });
      this.#table = new Int32Array(this.#shm.buf.buffer, this.#shm.buf.byteOffset, 1);
      this.#table = new Int32Array(this.#shm.buf.buffer, this.#shm.buf.byteOffset, 1 + FIELDS * this.#table[0]);
      return;
    }
    const items = [...sequence];
    const kinds = items.map((item, i) => kindOf(item, `new ShareableList: item ${i}`));
    const encoded = items.map((item, i) => encode(item, kinds[i]));
    const head = roomFor((1 + FIELDS * items.length) * 4);
    const size = encoded.reduce((total, bytes) => total + roomFor(bytes.length), head);
    this.#shm = new SharedMemory({ name: options.name, create: true, size });
    this.#table = new Int32Array(this.#shm.buf.buffer, this.#shm.buf.byteOffset, 1 + FIELDS * items.length);
    this.#table[0] = items.length;
    let offset = head;
    encoded.forEach((bytes, i) => {
      const at = 1 + FIELDS * i;
      this.#table[at + 1] = offset;
      this.#table[at + 2] = roomFor(bytes.length);
      this.#write(i, kinds[i], bytes);
      offset += roomFor(bytes.length);
    });
  }

  /** The SharedMemory block that holds the list; close it (and unlink it once) when done. */
  get shm(): SharedMemory {
    return this.#shm;
  }

  /** How many items it holds. */
  get length(): number {
    return this.#table[0];
  }

  #write(index: number, kind: number, bytes: Uint8Array): void {
    const at = 1 + FIELDS * index;
    this.#shm.buf.set(bytes, this.#table[at + 1]);
    this.#table[at + 3] = bytes.length;
    this.#table[at] = kind;
  }

  #index(index: number, what: string): number {
    if (typeof index !== "number" || !Number.isInteger(index)) {
      throw new TypeError(`ShareableList.${what}: index must be an integer, got ${String(index)}`);
    }
    const at = index < 0 ? index + this.length : index;
    if (at < 0 || at >= this.length) {
      throw new RangeError(`ShareableList.${what}: index ${index} is out of range for length ${this.length}`);
    }
    return at;
  }

  #read(index: number): ShareableItem {
    const at = 1 + FIELDS * index;
    const offset = this.#table[at + 1];
    return decode(this.#shm.buf.subarray(offset, offset + this.#table[at + 3]), this.#table[at]);
  }

  /**
   * The item at `index`.
   *
   * @throws {RangeError} when the index is out of range.
   *
   * @example
   * ```ts
   * import { ShareableList } from "@mp/multiprocessing";
   * using list = new ShareableList(["a", "b"]);
   * console.log(list.get(-1)); // "b"
   * list.shm.unlink();
   * ```
   */
  get(index: number): ShareableItem {
    return this.#read(this.#index(index, "get"));
  }

  /**
   * Replaces the item at `index`; the new item may have another type, but
   * must fit the room the old one was created with.
   *
   * @throws {RangeError} when the index is out of range or the item does not fit.
   *
   * @example
   * ```ts
   * import { ShareableList } from "@mp/multiprocessing";
   * using list = new ShareableList(["abc", 0]);
   * list.set(1, 2.5);
   * console.log(list.get(1)); // 2.5
   * list.shm.unlink();
   * ```
   */
  set(index: number, item: ShareableItem): void {
    const at = this.#index(index, "set");
    const kind = kindOf(item, `ShareableList.set(${index})`);
    const bytes = encode(item, kind);
    const room = this.#table[1 + FIELDS * at + 2];
    if (bytes.length > room) {
      throw new RangeError(
        `ShareableList.set(${index}): the item needs ${bytes.length} bytes, but this place holds ${room} (its size at creation)`,
      );
    }
    this.#write(at, kind, bytes);
  }

  /**
   * A copy of the items as a plain array.
   *
   * @example
   * ```ts
   * import { ShareableList } from "@mp/multiprocessing";
   * using list = new ShareableList([1, 2]);
   * console.log(list.toArray()); // [1, 2]
   * list.shm.unlink();
   * ```
   */
  toArray(): ShareableItem[] {
    return Array.from({ length: this.length }, (_, i) => this.#read(i));
  }

  /** The items, in order. */
  *[Symbol.iterator](): IterableIterator<ShareableItem> {
    for (let i = 0; i < this.length; i++) yield this.#read(i);
  }

  /**
   * How many items equal `value`.
   *
   * @example
   * ```ts
   * import { ShareableList } from "@mp/multiprocessing";
   * using list = new ShareableList([1, 1, 2]);
   * console.log(list.count(1)); // 2
   * list.shm.unlink();
   * ```
   */
  count(value: ShareableItem): number {
    return this.toArray().filter((item) => same(item, value)).length;
  }

  /**
   * The index of the first item equal to `value`.
   *
   * @throws {Error} when no item equals it (Python's ValueError).
   *
   * @example
   * ```ts
   * import { ShareableList } from "@mp/multiprocessing";
   * using list = new ShareableList(["a", "b"]);
   * console.log(list.index("b")); // 1
   * list.shm.unlink();
   * ```
   */
  index(value: ShareableItem): number {
    const found = this.toArray().findIndex((item) => same(item, value));
    if (found === -1) throw new Error(`ShareableList.index: ${String(value)} is not in the list`);
    return found;
  }

  /** Closes this process's handle on the block (`using list = …`). */
  [Symbol.dispose](): void {
    this.#shm.close();
  }

  /**
   * Sends the block's name; the other process attaches to it.
   *
   * @ignore
   */
  [reduce](): Reduction {
    return { kind: "@mp/ShareableList", state: this.#shm.name };
  }

  /** Shows the items and the name, as Python's repr does. */
  toString(): string {
    return `ShareableList(${
      JSON.stringify(this.toArray(), (_, v) => typeof v === "bigint" ? `${v}n` : v)
    }, name='${this.#shm.name}')`;
  }
}

function same(a: ShareableItem, b: ShareableItem): boolean {
  if (a instanceof Uint8Array && b instanceof Uint8Array) {
    return a.length === b.length && a.every((byte, i) => byte === b[i]);
  }
  return Object.is(a, b) || a === b;
}

registerKind("@mp/ShareableList", (name) => new ShareableList(null, { name: name as string }));
