/**
 * Plain data as Python pickle, protocols 2 to 5, written the way CPython's
 * own pickler writes it (so `pickletools.dis` reads it as a Python pickle):
 * null → None, booleans, integers (safe numbers and bigints) → int, other
 * numbers → float, strings → str, `Uint8Array` → bytes, arrays → list,
 * {@linkcode PyTuple} → tuple, plain objects and `Map` → dict, `Set` → set,
 * {@linkcode PyGlobal} and {@linkcode PyObject} as class references and
 * objects. Anything else is refused with a {@linkcode PickleError} that
 * names its type and where it sits in the value.
 *
 * @module
 */
import { Op } from "./opcodes.ts";
import { encodeText } from "./text.ts";
import { Writer } from "./writer.ts";
import { PickleError, PyGlobal, PyObject, PyTuple } from "./values.ts";

/** What {@linkcode dumps} takes. */
export interface DumpOptions {
  /** The pickle protocol to write, 2 to 5; 4 by default (Python 3.8+'s default). */
  protocol?: 2 | 3 | 4 | 5;
  /**
   * Refuse, with a {@linkcode PickleError}, what `loads` would not give back
   * the same: a bigint within ±2^53 (it comes back a number), an integer
   * number beyond (it comes back a bigint), a `Map` whose keys are all
   * strings (it comes back a plain object). Off by default: Python reads those fine.
   */
  exact?: boolean;
}

/** Items per APPENDS/SETITEMS/ADDITEMS batch, as CPython's pickler. */
const BATCH = 1000;
/** Deeper nesting than this is refused: the writer recurses, and 2000 levels stay well inside every runtime's stack. */
const MAX_DEPTH = 2000;

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;
const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

function describe(value: unknown): string {
  if (value === undefined) return "undefined";
  if (typeof value === "function") return `a function (${value.name || "anonymous"})`;
  if (typeof value === "symbol") return "a symbol";
  if (typeof value !== "object" || value === null) return typeof value;
  const name = Object.getPrototypeOf(value)?.constructor?.name;
  return name ? `a ${name}` : "an object";
}

function refuse(value: unknown, path: string): never {
  throw new PickleError(
    `cannot pickle ${describe(value)} at ${path}: Python's pickle carries only None, bool, int, float, str, ` +
      `bytes (Uint8Array), list (Array), tuple (PyTuple), dict (plain object or Map), set (Set) and PyGlobal/PyObject`,
  );
}

function isPlainObject(value: object): boolean {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function writeInt(w: Writer, n: number | bigint): void {
  if (typeof n === "number" && n >= 0 && n < 256) {
    w.room(2);
    w.out[w.at++] = Op.BININT1;
    w.out[w.at++] = n;
  } else if (typeof n === "number" && n >= 0 && n < 65536) {
    w.room(3);
    w.out[w.at++] = Op.BININT2;
    w.out[w.at++] = n & 0xff;
    w.out[w.at++] = n >> 8;
  } else if (typeof n === "number" && n >= INT32_MIN && n <= INT32_MAX) {
    w.u32(Op.BININT, n >>> 0);
  } else writeLong(w, BigInt(n));
}

/** LONG1/LONG4: the shortest little-endian two's complement of `n`. */
function writeLong(w: Writer, n: bigint): void {
  const digits: number[] = [];
  let rest = n;
  if (rest !== 0n) {
    for (;;) {
      const low = Number(rest & 0xffn);
      digits.push(low);
      rest >>= 8n;
      if ((rest === 0n && (low & 0x80) === 0) || (rest === -1n && (low & 0x80) !== 0)) break;
    }
  }
  if (digits.length < 256) {
    w.room(2);
    w.out[w.at++] = Op.LONG1;
    w.out[w.at++] = digits.length;
  } else w.u32(Op.LONG4, digits.length);
  w.bytes(Uint8Array.from(digits));
}

function writeFloat(w: Writer, n: number): void {
  w.room(9);
  w.out[w.at] = Op.BINFLOAT;
  w.view.setFloat64(w.at + 1, n, false);
  w.at += 9;
}

/** Short strings of ASCII only (most keys and words) are copied by hand: `TextEncoder` costs more than the copy there. */
const SHORT_ASCII = 64;

function writeString(w: Writer, s: string): void {
  if (w.recall(s)) return;
  if (s.length < SHORT_ASCII && w.protocol >= 4) {
    w.room(2 + s.length);
    const start = w.at;
    let i = 0;
    for (; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      w.out[start + 2 + i] = c;
    }
    if (i === s.length) {
      w.out[start] = Op.SHORT_BINUNICODE;
      w.out[start + 1] = s.length;
      w.at = start + 2 + s.length;
      w.remember(s);
      return;
    }
  }
  const utf8 = encodeText(s);
  w.sizedOp(utf8.length, w.protocol >= 4 ? Op.SHORT_BINUNICODE : -1, Op.BINUNICODE, Op.BINUNICODE8);
  w.bytes(utf8);
  w.remember(s);
}

function writeBytes(w: Writer, b: Uint8Array, path: string): void {
  if (w.recall(b)) return;
  if (w.protocol < 3) {
    // Protocol 2 has no bytes opcode: CPython writes `_codecs.encode(text, "latin1")`, or `bytes()` when empty.
    if (b.length === 0) {
      writeGlobal(w, new PyGlobal("__builtin__", "bytes"));
      w.byte(Op.EMPTY_TUPLE);
    } else {
      writeGlobal(w, new PyGlobal("_codecs", "encode"));
      let latin1 = "";
      for (let i = 0; i < b.length; i += 8192) latin1 += String.fromCharCode(...b.subarray(i, i + 8192));
      writeString(w, latin1);
      writeString(w, "latin1");
      w.byte(Op.TUPLE2);
    }
    w.byte(Op.REDUCE);
  } else {
    w.sizedOp(b.length, Op.SHORT_BINBYTES, Op.BINBYTES, Op.BINBYTES8);
    w.bytes(b);
  }
  w.remember(b);
  void path;
}

function writeGlobal(w: Writer, g: PyGlobal): void {
  if (w.protocol >= 4) {
    writeString(w, g.module);
    writeString(w, g.name);
    w.byte(Op.STACK_GLOBAL);
  } else {
    w.byte(Op.GLOBAL);
    w.bytes(encodeText(`${g.module}\n${g.name}\n`));
  }
  w.remember(g);
}

function writeTuple(w: Writer, t: PyTuple, path: string, depth: number): void {
  if (w.recall(t)) return;
  if (w.open.has(t)) throw new PickleError(`cannot pickle the tuple at ${path}: it contains itself`);
  w.open.add(t);
  const n = t.length;
  if (n === 0) w.byte(Op.EMPTY_TUPLE);
  else {
    if (n > 3) w.byte(Op.MARK);
    for (let i = 0; i < n; i++) write(w, t[i], w.paths ? `${path}[${i}]` : path, depth);
    w.byte(n === 1 ? Op.TUPLE1 : n === 2 ? Op.TUPLE2 : n === 3 ? Op.TUPLE3 : Op.TUPLE);
  }
  w.open.delete(t);
  w.remember(t);
}

function writeList(w: Writer, list: unknown[], path: string, depth: number): void {
  w.byte(Op.EMPTY_LIST);
  w.remember(list);
  for (let start = 0; start < list.length; start += BATCH) {
    const end = Math.min(list.length, start + BATCH);
    if (end - start > 1) w.byte(Op.MARK);
    for (let i = start; i < end; i++) {
      if (!(i in list)) throw new PickleError(`cannot pickle the hole at ${path}[${i}]: a list has no empty slots`);
      write(w, list[i], w.paths ? `${path}[${i}]` : path, depth);
    }
    w.byte(end - start > 1 ? Op.APPENDS : Op.APPEND);
  }
}

function writeDict(w: Writer, entries: [unknown, unknown][], key: object, path: string, depth: number): void {
  w.byte(Op.EMPTY_DICT);
  w.remember(key);
  for (let start = 0; start < entries.length; start += BATCH) {
    const end = Math.min(entries.length, start + BATCH);
    if (end - start > 1) w.byte(Op.MARK);
    for (let i = start; i < end; i++) {
      const [k, v] = entries[i];
      const at = !w.paths ? path : typeof k === "string" ? `${path}.${k}` : `${path}[key ${i}]`;
      write(w, k, at, depth);
      write(w, v, at, depth);
    }
    w.byte(end - start > 1 ? Op.SETITEMS : Op.SETITEM);
  }
}

function writeSet(w: Writer, set: Set<unknown>, path: string, depth: number): void {
  const items = [...set];
  if (w.protocol < 4) {
    // CPython before protocol 4: `set([items])`, a REDUCE.
    writeGlobal(w, new PyGlobal(w.protocol < 3 ? "__builtin__" : "builtins", "set"));
    writeList(w, items, w.paths ? `${path}.items` : path, depth);
    w.byte(Op.TUPLE1);
    w.byte(Op.REDUCE);
    w.remember(set);
    return;
  }
  w.byte(Op.EMPTY_SET);
  w.remember(set);
  for (let start = 0; start < items.length; start += BATCH) {
    w.byte(Op.MARK);
    for (let i = start; i < Math.min(items.length, start + BATCH); i++) {
      write(w, items[i], w.paths ? `${path}.items[${i}]` : path, depth);
    }
    w.byte(Op.ADDITEMS);
  }
}

function writeObject(w: Writer, o: PyObject, path: string, depth: number): void {
  if (w.recall(o)) return;
  if (!(o.cls instanceof PyGlobal)) {
    throw new PickleError(`cannot pickle the PyObject at ${path}: its cls is no PyGlobal`);
  }
  writeGlobal(w, o.cls);
  const args = o.args instanceof PyTuple ? o.args : tuple(o.args);
  writeTuple(w, args, w.paths ? `${path}.args` : path, depth);
  if (o.via === "reduce") w.byte(Op.REDUCE);
  else if (o.kwargs !== undefined) {
    if (w.protocol < 4) throw new PickleError(`cannot pickle the PyObject at ${path} with kwargs below protocol 4`);
    write(w, o.kwargs, w.paths ? `${path}.kwargs` : path, depth);
    w.byte(Op.NEWOBJ_EX);
  } else w.byte(Op.NEWOBJ);
  w.remember(o);
  if (o.state !== undefined) {
    write(w, o.state, w.paths ? `${path}.state` : path, depth);
    w.byte(Op.BUILD);
  }
}

function tuple(items: unknown[]): PyTuple {
  const t = new PyTuple(items.length);
  for (let i = 0; i < items.length; i++) t[i] = items[i];
  return t;
}

/** In exact mode: what would come back as something else. */
function inexact(what: string, path: string): never {
  throw new PickleError(
    `cannot pickle ${what} at ${path} exactly: loads() would give back ${
      what.startsWith("a Map") ? "a plain object" : what.startsWith("a bigint") ? "a number" : "a bigint"
    }`,
  );
}

function write(w: Writer, value: unknown, path: string, depth: number): void {
  switch (typeof value) {
    case "number":
      if (Number.isSafeInteger(value) && !Object.is(value, -0)) writeInt(w, value);
      else if (Number.isInteger(value) && !Object.is(value, -0)) {
        if (w.exact) inexact("an integer number beyond 2^53", path);
        writeLong(w, BigInt(value));
      } else writeFloat(w, value);
      break;
    case "string":
      writeString(w, value);
      break;
    case "boolean":
      w.byte(value ? Op.NEWTRUE : Op.NEWFALSE);
      break;
    case "bigint":
      if (w.exact && value >= MIN_SAFE && value <= MAX_SAFE) inexact("a bigint within 2^53", path);
      if (value >= INT32_MIN && value <= INT32_MAX) writeInt(w, Number(value));
      else writeLong(w, value);
      break;
    case "object": {
      if (value === null) {
        w.byte(Op.NONE);
        break;
      }
      if (depth >= MAX_DEPTH) {
        throw new PickleError(`cannot pickle the value at ${path}: nested deeper than ${MAX_DEPTH}`);
      }
      if (value instanceof PyTuple) writeTuple(w, value, path, depth + 1);
      else if (w.recall(value)) break;
      else if (Array.isArray(value)) writeList(w, value, path, depth + 1);
      else if (value instanceof Uint8Array) writeBytes(w, value, path);
      else if (value instanceof Map) {
        const entries = [...value];
        if (w.exact && entries.every(([key]) => typeof key === "string")) {
          inexact("a Map whose keys are all strings", path);
        }
        writeDict(w, entries, value, path, depth + 1);
      } else if (value instanceof Set) writeSet(w, value, path, depth + 1);
      else if (value instanceof PyGlobal) writeGlobal(w, value);
      else if (value instanceof PyObject) writeObject(w, value, path, depth + 1);
      else if (isPlainObject(value)) {
        if (Object.getOwnPropertySymbols(value).length > 0) {
          throw new PickleError(`cannot pickle the object at ${path}: a dict has no symbol keys`);
        }
        writeDict(w, Object.entries(value), value, path, depth + 1);
      } else refuse(value, path);
      break;
    }
    default:
      refuse(value, path);
  }
  w.maybeFrame();
}

/**
 * `value` as a Python pickle (protocol 4 unless `options.protocol` says
 * otherwise), for Python's `pickle.loads`. Shared and cyclic references in
 * lists, dicts and sets are kept, as Python's memo keeps them.
 *
 * @throws {PickleError} naming the type and place of a value that pickle cannot carry.
 * @throws {RangeError} for a protocol other than 2 to 5.
 *
 * @example
 * ```ts
 * import { dumps, loads } from "@mp/multiprocessing/connection";
 * const bytes = dumps({ answer: 42, names: ["a", "b"] });
 * console.log(loads(bytes)); // { answer: 42, names: ["a", "b"] }
 * ```
 */
export function dumps(value: unknown, options?: DumpOptions): Uint8Array {
  const protocol = options?.protocol ?? 4;
  if (![2, 3, 4, 5].includes(protocol)) {
    throw new RangeError(`dumps: protocol must be 2, 3, 4 or 5, got ${String(protocol)}`);
  }
  const w = writerFor(protocol, options?.exact === true);
  try {
    return written(w, value, protocol);
  } catch (error) {
    if (!(error instanceof PickleError)) throw error;
    // Again, to say where: the same error, with the path of the value that failed.
    w.reset(protocol, options?.exact === true);
    w.paths = true;
    return written(w, value, protocol);
  } finally {
    w.paths = false;
    release(w);
  }
}

/**
 * The whole pickle of `value` by `w`, after `headroom` bytes left for the
 * caller and before `trailer`.
 */
function written(
  w: Writer,
  value: unknown,
  protocol: number,
  headroom = 0,
  trailer?: Uint8Array,
  view = false,
): Uint8Array {
  w.room(2 + headroom);
  w.at = headroom;
  w.out[w.at++] = Op.PROTO;
  w.out[w.at++] = protocol;
  w.startFrame();
  write(w, value, "value", 0);
  w.byte(Op.STOP);
  w.endFrame(false);
  if (trailer) w.bytes(trailer);
  return view ? w.out.subarray(0, w.at) : w.out.slice(0, w.at);
}

/**
 * For a socket `Connection`: the protocol-4 pickle of `value` and then
 * `trailer`, as one message of CPython's framing (its 4-byte big-endian
 * length first), in one buffer: the copy into a frame was a second copy of
 * every message.
 *
 * `scratch`: the bytes are a view of the writer's own buffer, valid until
 * the next pickle is written, for a caller that copies them at once (a
 * socket's outbox): no buffer per message.
 *
 * @throws {PickleError} as {@linkcode dumps}.
 * @throws {RangeError} for a message of 2 GiB or more (the short header's limit).
 */
export function framedPickle(
  value: unknown,
  exact: boolean,
  trailer?: Uint8Array,
  scratch: boolean = false,
): Uint8Array {
  const w = writerFor(4, exact);
  let framed: Uint8Array;
  try {
    framed = written(w, value, 4, 4, trailer, scratch);
  } catch (error) {
    if (!(error instanceof PickleError)) throw error;
    w.reset(4, exact);
    w.paths = true;
    framed = written(w, value, 4, 4, trailer, scratch);
  } finally {
    w.paths = false;
    release(w);
  }
  const n = framed.length - 4;
  if (n > 0x7fffffff) throw new RangeError(`a pickle of ${n} bytes is longer than one message can be`);
  framed[0] = n >>> 24;
  framed[1] = (n >>> 16) & 0xff;
  framed[2] = (n >>> 8) & 0xff;
  framed[3] = n & 0xff;
  return framed;
}

/** One Writer, reset per call: a fresh buffer, DataView and memo per small message was the largest cost (GC). */
let spare: Writer | undefined;

function writerFor(protocol: number, exact: boolean): Writer {
  // A call nested inside another (impossible today: nothing here calls back into user code) must not share it.
  const w = spare ?? new Writer(protocol);
  spare = undefined;
  w.reset(protocol, exact);
  return w;
}

/** Keeps `w` for the next call, unless one large value grew its buffer past 1 MiB. */
function release(w: Writer): void {
  if (w.out.length <= 1 << 20) spare = w;
}
