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
import { AS_MAPS, kind, Reader } from "./reader.ts";
import { settle } from "./settle.ts";
import { PyGlobal, PyObject, PyTuple } from "./values.ts";

/** What {@linkcode loads} takes. */
export interface LoadOptions {
  /** The longest single str or bytes accepted, in bytes (default 2^31 - 1). */
  maxLength?: number;
}

/** Python 2 module names that Python 3's unpickler maps to its own (fix_imports). */
const RENAMED: Record<string, string> = { __builtin__: "builtins", copy_reg: "copyreg", exceptions: "builtins" };

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
