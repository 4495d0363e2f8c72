/**
 * The cursor the unpickler (`load.ts`) reads with: bounds-checked reads of
 * bytes, integers, lines and text, the stack with its marks, the memo, and
 * how a dict takes an item (a plain object, or a Map once a key is not a
 * str). `load.ts` holds the opcode loop; this module is the state it works on.
 *
 * @module
 */
import { latin1 } from "./literals.ts";
import { decodeText } from "./text.ts";
import { PickleError, PyGlobal, PyObject, PyTuple } from "./values.ts";

/** Thrown inside the reader when a dict gets a key that is not a str: it starts again, building Maps. */
export const AS_MAPS = Symbol("dicts as maps");

/**
 * The unpickler's state: where it is in the bytes, the stack, the marks and
 * the memo, with every read checked against the bytes really there.
 *
 * @example
 * ```ts
 * import { Reader } from "./reader.ts";
 * const r = new Reader(new Uint8Array([0x80, 4]), 2 ** 31 - 1, false);
 * r.u8(); // 0x80
 * ```
 */
export class Reader {
  at = 0;
  readonly stack: unknown[] = [];
  readonly marks: number[] = [];
  /** An array, not a Map: cheaper to make per message; a huge index just makes it sparse. */
  readonly memo: unknown[] = [];
  /** Entries stored: MEMOIZE's index, as Python's `len(memo)` (not the array's length, when PUT skipped indices). */
  memoCount = 0;

  readonly data: Uint8Array;
  readonly maxLength: number;
  readonly maps: boolean;
  /** Made when a float or a 64-bit length is read: a DataView per message was a large part of a small loads. */
  #view?: DataView;
  #failer?: (message: string) => never;

  constructor(data: Uint8Array, maxLength: number, maps: boolean) {
    this.data = data;
    this.maxLength = maxLength;
    this.maps = maps;
  }

  get view(): DataView {
    return this.#view ??= new DataView(this.data.buffer, this.data.byteOffset, this.data.byteLength);
  }

  /** Throws a PickleError saying where. */
  fail(message: string): never {
    throw new PickleError(`${message} (at byte ${this.at} of ${this.data.length})`);
  }

  /** `fail`, as a function to hand to the parsers of text opcodes. */
  get failer(): (message: string) => never {
    return this.#failer ??= (message) => this.fail(message);
  }

  need(n: number): void {
    if (this.at + n > this.data.length) {
      this.fail(`truncated pickle: ${n} more byte(s) needed, ${this.data.length - this.at} left`);
    }
  }

  u8(): number {
    this.need(1);
    return this.data[this.at++];
  }

  u16(): number {
    this.need(2);
    const { data, at } = this;
    this.at += 2;
    return data[at] | (data[at + 1] << 8);
  }

  u32(): number {
    return this.i32() >>> 0;
  }

  i32(): number {
    this.need(4);
    const { data, at } = this;
    this.at += 4;
    return data[at] | (data[at + 1] << 8) | (data[at + 2] << 16) | (data[at + 3] << 24);
  }

  u64(): number {
    this.need(8);
    const low = this.u32();
    const high = this.u32();
    // Beyond 2^53 no length can be real: Infinity fails every check against the bytes there.
    return high >= 2 ** 21 ? Infinity : high * 2 ** 32 + low;
  }

  take(n: number, what: string): Uint8Array {
    if (n > this.maxLength) this.fail(`a ${what} of ${n} bytes is longer than the limit of ${this.maxLength}`);
    this.need(n);
    const bytes = this.data.subarray(this.at, this.at + n);
    this.at += n;
    return bytes;
  }

  line(): string {
    const end = this.data.indexOf(0x0a, this.at);
    if (end < 0) this.fail("truncated pickle: a line without its newline");
    const text = latin1(this.data.subarray(this.at, end));
    this.at = end + 1;
    return text;
  }

  text(n: number): string {
    if (n < 32 && this.at + n <= this.data.length) {
      // Short ASCII by hand: TextDecoder's call costs more than the loop there.
      const { data, at } = this;
      let ascii = "";
      let i = 0;
      for (; i < n && data[at + i] < 0x80; i++) ascii += String.fromCharCode(data[at + i]);
      if (i === n) {
        this.at += n;
        return ascii;
      }
    }
    const bytes = this.take(n, "str");
    try {
      return decodeText(bytes);
    } catch (error) {
      this.fail(`a str that is not UTF-8: ${(error as Error).message}`);
    }
  }

  pop(): unknown {
    if (this.stack.length <= (this.marks.at(-1) ?? 0)) this.fail("stack underflow: the pickle is malformed");
    return this.stack.pop();
  }

  top(): unknown {
    if (this.stack.length <= (this.marks.at(-1) ?? 0)) this.fail("stack underflow: the pickle is malformed");
    return this.stack[this.stack.length - 1];
  }

  /** The items since the last MARK, which is removed. */
  popMark(): unknown[] {
    const mark = this.marks.pop();
    if (mark === undefined) this.fail("no MARK on the stack: the pickle is malformed");
    return this.stack.splice(mark);
  }

  get(index: number): unknown {
    if (!(index in this.memo)) this.fail(`memo entry ${index} was never stored`);
    return this.memo[index];
  }

  put(index: number): void {
    if (!(index in this.memo)) this.memoCount++;
    this.memo[index] = this.top();
  }

  setItem(dict: unknown, key: unknown, value: unknown): void {
    if (dict instanceof Map) dict.set(key, value);
    else if (typeof dict === "object" && dict !== null && !Array.isArray(dict) && isDict(dict)) {
      if (typeof key !== "string") throw AS_MAPS;
      if (key === "__proto__") {
        Object.defineProperty(dict, key, { value, writable: true, enumerable: true, configurable: true });
      } else (dict as Record<string, unknown>)[key] = value;
    } else this.fail(`SETITEM on ${kind(dict)}, not a dict`);
  }

  newDict(): object {
    return this.maps ? new Map() : {};
  }
}

/** Plain objects made here for dicts have Object.prototype; anything else (PyObject …) is not a dict. */
function isDict(value: object): boolean {
  return Object.getPrototypeOf(value) === Object.prototype;
}

/**
 * What a value is, in Python's words, for an error message.
 *
 * @example
 * ```ts
 * import { kind } from "./reader.ts";
 * kind(null); // "None"
 * ```
 */
export function kind(value: unknown): string {
  if (value === null) return "None";
  if (value instanceof PyTuple) return "a tuple";
  if (Array.isArray(value)) return "a list";
  if (value instanceof PyGlobal) return `the global ${value}`;
  if (value instanceof PyObject) return `an object of ${value.cls}`;
  return typeof value === "object" ? (value.constructor?.name ?? "an object") : typeof value;
}
