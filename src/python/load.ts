/**
 * Python pickles (protocols 0 to 5) as JavaScript values, for plain data:
 * None → null, bool, int (a number, or a bigint beyond 2^53), float, str,
 * bytes and bytearray → `Uint8Array`, list → array, tuple →
 * {@linkcode PyTuple}, dict → plain object when every key is a str, else
 * `Map`, set and frozenset → `Set`, a class reference → {@linkcode PyGlobal},
 * any other object → {@linkcode PyObject} (nothing is imported or run).
 * Shared and cyclic references come back shared.
 *
 * The reader is a loop over the opcodes, never recursion, so no input can
 * overflow the stack; every length is checked against the bytes that are
 * really there, so a truncated or lying pickle fails with a
 * {@linkcode PickleError} instead of reading past its end or allocating
 * what it claims.
 *
 * @module
 */
import { Op } from "./opcodes.ts";
import {
  bytesFromLatin1,
  decodeLong,
  latin1,
  parseFloat,
  parseInt,
  quotedString,
  rawUnicodeEscape,
} from "./literals.ts";
import { settle } from "./settle.ts";
import { decodeText } from "./text.ts";
import { PickleError, PyGlobal, PyObject, PyTuple } from "./values.ts";

/** What {@linkcode loads} takes. */
export interface LoadOptions {
  /** The longest single str or bytes accepted, in bytes (default 2^31 - 1). */
  maxLength?: number;
}

/** Thrown inside the reader when a dict gets a key that is not a str: it starts again, building Maps. */
const AS_MAPS = Symbol("dicts as maps");

/** Python 2 module names that Python 3's unpickler maps to its own (fix_imports). */
const RENAMED: Record<string, string> = { __builtin__: "builtins", copy_reg: "copyreg", exceptions: "builtins" };

class Reader {
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

function kind(value: unknown): string {
  if (value === null) return "None";
  if (value instanceof PyTuple) return "a tuple";
  if (Array.isArray(value)) return "a list";
  if (value instanceof PyGlobal) return `the global ${value}`;
  if (value instanceof PyObject) return `an object of ${value.cls}`;
  return typeof value === "object" ? (value.constructor?.name ?? "an object") : typeof value;
}

function toTuple(items: unknown[]): PyTuple {
  const t = new PyTuple(items.length);
  for (let i = 0; i < items.length; i++) t[i] = items[i];
  return t;
}

function global(module: string, name: string): PyGlobal {
  return new PyGlobal(RENAMED[module] ?? module, name);
}

/** What a call of `cls` with `args` makes: plain data for the builtins pickle spells as calls, else a PyObject. */
function call(cls: unknown, args: unknown, via: "reduce" | "newobj", r: Reader): unknown {
  if (!(cls instanceof PyGlobal)) r.fail(`${via === "reduce" ? "REDUCE" : "NEWOBJ"} on ${kind(cls)}, not a class`);
  if (!Array.isArray(args)) r.fail(`the arguments of ${cls} are ${kind(args)}, not a tuple`);
  const [a, b] = args;
  if (cls.module === "_codecs" && cls.name === "encode" && args.length === 2 && typeof a === "string") {
    if (b === "latin1" || b === "latin-1") return bytesFromLatin1(a);
  }
  if (cls.module === "builtins") {
    if (cls.name === "bytes" || cls.name === "bytearray") {
      if (args.length === 0) return new Uint8Array(0);
      if (args.length === 1 && a instanceof Uint8Array) return a.slice();
      if (args.length === 2 && typeof a === "string" && (b === "latin1" || b === "latin-1")) return bytesFromLatin1(a);
    }
    if (cls.name === "set" || cls.name === "frozenset") {
      if (args.length === 0) return new Set();
      if (args.length === 1 && Array.isArray(a)) return new Set(a);
    }
  }
  const made = new PyObject(cls, [...args]);
  made.via = via;
  return made;
}

function run(r: Reader): unknown {
  const { stack } = r;
  for (;;) {
    const op = r.u8();
    switch (op) {
      case Op.PROTO: {
        const protocol = r.u8();
        if (protocol > 5) r.fail(`unsupported pickle protocol ${protocol}`);
        break;
      }
      case Op.FRAME: {
        const length = r.u64();
        if (length > r.data.length - r.at) r.fail(`truncated pickle: a FRAME of ${length} bytes`);
        break;
      }
      case Op.STOP:
        if (stack.length === 0) r.fail("STOP with nothing on the stack");
        return stack.pop();
      case Op.NONE:
        stack.push(null);
        break;
      case Op.NEWTRUE:
        stack.push(true);
        break;
      case Op.NEWFALSE:
        stack.push(false);
        break;
      case Op.BININT1:
        stack.push(r.u8());
        break;
      case Op.BININT2:
        stack.push(r.u16());
        break;
      case Op.BININT:
        stack.push(r.i32());
        break;
      case Op.LONG1:
        stack.push(decodeLong(r.take(r.u8(), "long")));
        break;
      case Op.LONG4: {
        const n = r.i32();
        if (n < 0) r.fail("LONG4 with a negative length");
        stack.push(decodeLong(r.take(n, "long")));
        break;
      }
      case Op.INT: {
        const line = r.line();
        stack.push(line === "01" ? true : line === "00" ? false : parseInt(line, r.failer));
        break;
      }
      case Op.LONG:
        stack.push(parseInt(r.line(), r.failer));
        break;
      case Op.FLOAT:
        stack.push(parseFloat(r.line(), r.failer));
        break;
      case Op.BINFLOAT: {
        r.need(8);
        stack.push(r.view.getFloat64(r.at, false));
        r.at += 8;
        break;
      }
      case Op.SHORT_BINUNICODE:
        stack.push(r.text(r.u8()));
        break;
      case Op.BINUNICODE:
        stack.push(r.text(r.u32()));
        break;
      case Op.BINUNICODE8:
        stack.push(r.text(r.u64()));
        break;
      case Op.UNICODE:
        stack.push(rawUnicodeEscape(r.line(), r.failer));
        break;
      case Op.STRING:
        stack.push(quotedString(r.line(), r.failer));
        break;
      case Op.SHORT_BINSTRING:
        stack.push(latin1(r.take(r.u8(), "string")));
        break;
      case Op.BINSTRING: {
        const n = r.i32();
        if (n < 0) r.fail("BINSTRING with a negative length");
        stack.push(latin1(r.take(n, "string")));
        break;
      }
      case Op.SHORT_BINBYTES:
        stack.push(r.take(r.u8(), "bytes").slice());
        break;
      case Op.BINBYTES:
        stack.push(r.take(r.u32(), "bytes").slice());
        break;
      case Op.BINBYTES8:
      case Op.BYTEARRAY8:
        stack.push(r.take(r.u64(), "bytes").slice());
        break;
      case Op.READONLY_BUFFER:
        r.top();
        break;
      case Op.EMPTY_LIST:
        stack.push([]);
        break;
      case Op.EMPTY_TUPLE:
        stack.push(new PyTuple());
        break;
      case Op.EMPTY_DICT:
        stack.push(r.newDict());
        break;
      case Op.EMPTY_SET:
        stack.push(new Set());
        break;
      case Op.MARK:
        r.marks.push(stack.length);
        break;
      case Op.POP:
        if (stack.length > (r.marks.at(-1) ?? 0)) stack.pop();
        else r.popMark();
        break;
      case Op.POP_MARK:
        r.popMark();
        break;
      case Op.DUP:
        stack.push(r.top());
        break;
      case Op.LIST:
        stack.push(r.popMark());
        break;
      case Op.TUPLE:
        stack.push(toTuple(r.popMark()));
        break;
      case Op.TUPLE1: {
        const a = r.pop();
        stack.push(toTuple([a]));
        break;
      }
      case Op.TUPLE2: {
        const b = r.pop();
        const a = r.pop();
        stack.push(toTuple([a, b]));
        break;
      }
      case Op.TUPLE3: {
        const c = r.pop();
        const b = r.pop();
        const a = r.pop();
        stack.push(toTuple([a, b, c]));
        break;
      }
      case Op.DICT: {
        const items = r.popMark();
        if (items.length % 2) r.fail("DICT with an odd number of items");
        const dict = r.newDict();
        for (let i = 0; i < items.length; i += 2) r.setItem(dict, items[i], items[i + 1]);
        stack.push(dict);
        break;
      }
      case Op.FROZENSET:
        stack.push(new Set(r.popMark()));
        break;
      case Op.APPEND: {
        const item = r.pop();
        const list = r.top();
        if (!Array.isArray(list) || list instanceof PyTuple) r.fail(`APPEND to ${kind(list)}, not a list`);
        list.push(item);
        break;
      }
      case Op.APPENDS: {
        const items = r.popMark();
        const list = r.top();
        if (!Array.isArray(list) || list instanceof PyTuple) r.fail(`APPENDS to ${kind(list)}, not a list`);
        for (const item of items) list.push(item);
        break;
      }
      case Op.SETITEM: {
        const value = r.pop();
        const key = r.pop();
        r.setItem(r.top(), key, value);
        break;
      }
      case Op.SETITEMS: {
        const items = r.popMark();
        if (items.length % 2) r.fail("SETITEMS with an odd number of items");
        const dict = r.top();
        for (let i = 0; i < items.length; i += 2) r.setItem(dict, items[i], items[i + 1]);
        break;
      }
      case Op.ADDITEMS: {
        const items = r.popMark();
        const set = r.top();
        if (!(set instanceof Set)) r.fail(`ADDITEMS to ${kind(set)}, not a set`);
        for (const item of items) set.add(item);
        break;
      }
      case Op.GET:
        stack.push(r.get(Number(parseInt(r.line(), r.failer))));
        break;
      case Op.BINGET:
        stack.push(r.get(r.u8()));
        break;
      case Op.LONG_BINGET:
        stack.push(r.get(r.u32()));
        break;
      case Op.PUT:
        r.put(Number(parseInt(r.line(), r.failer)));
        break;
      case Op.BINPUT:
        r.put(r.u8());
        break;
      case Op.LONG_BINPUT:
        r.put(r.u32());
        break;
      case Op.MEMOIZE:
        r.put(r.memoCount);
        break;
      case Op.GLOBAL: {
        const module = r.line();
        stack.push(global(module, r.line()));
        break;
      }
      case Op.STACK_GLOBAL: {
        const name = r.pop();
        const module = r.pop();
        if (typeof module !== "string" || typeof name !== "string") r.fail("STACK_GLOBAL needs two str");
        stack.push(global(module, name));
        break;
      }
      case Op.REDUCE: {
        const args = r.pop();
        const cls = r.pop();
        stack.push(call(cls, args, "reduce", r));
        break;
      }
      case Op.NEWOBJ: {
        const args = r.pop();
        const cls = r.pop();
        stack.push(call(cls, args, "newobj", r));
        break;
      }
      case Op.NEWOBJ_EX: {
        const kwargs = r.pop();
        const args = r.pop();
        const cls = r.pop();
        const made = call(cls, args, "newobj", r);
        if (made instanceof PyObject && kwargs !== null && typeof kwargs === "object") {
          const entries = kwargs instanceof Map ? [...kwargs] : Object.entries(kwargs);
          if (entries.length > 0) made.kwargs = Object.fromEntries(entries);
        }
        stack.push(made);
        break;
      }
      case Op.OBJ: {
        const [cls, ...args] = r.popMark();
        stack.push(call(cls, args, "reduce", r));
        break;
      }
      case Op.INST: {
        const module = r.line();
        const cls = global(module, r.line());
        stack.push(call(cls, r.popMark(), "reduce", r));
        break;
      }
      case Op.BUILD: {
        const state = r.pop();
        const target = r.top();
        if (target instanceof PyObject) target.state = state;
        else if (state !== null) r.fail(`BUILD on ${kind(target)}, which takes no state`);
        break;
      }
      case Op.PERSID:
      case Op.BINPERSID:
        r.fail("a persistent id (PERSID) cannot be resolved here");
        break;
      case Op.EXT1:
      case Op.EXT2:
      case Op.EXT4:
        r.fail("an extension code (EXT) cannot be resolved here");
        break;
      case Op.NEXT_BUFFER:
        r.fail("an out-of-band buffer (NEXT_BUFFER) cannot be resolved here");
        break;
      default:
        r.at--;
        r.fail(`not a pickle: unknown opcode 0x${op.toString(16).padStart(2, "0")}`);
    }
  }
}

/**
 * The value of the Python pickle in `data` (any protocol 0 to 5, as far as
 * plain data goes; see the module's notes for what each Python type becomes).
 *
 * @throws {PickleError} for truncated or malformed input, an unknown opcode,
 * or a str/bytes longer than `options.maxLength`.
 *
 * @example
 * ```ts
 * import { loads } from "@mp/multiprocessing/connection";
 * // pickle.dumps((1, "a"), protocol=2) in Python:
 * const t = loads(Uint8Array.from([0x80, 2, 0x4b, 1, 0x58, 1, 0, 0, 0, 0x61, 0x86, 0x71, 0, 0x2e]));
 * console.log(t); // PyTuple(2) [1, "a"]
 * ```
 */
export function loads(data: Uint8Array, options?: LoadOptions): unknown {
  if (!(data instanceof Uint8Array)) throw new TypeError(`loads: expected a Uint8Array, got ${kind(data)}`);
  const maxLength = options?.maxLength ?? 2 ** 31 - 1;
  try {
    return run(new Reader(data, maxLength, false));
  } catch (error) {
    if (error !== AS_MAPS) throw error;
  }
  return settle(run(new Reader(data, maxLength, true)));
}
