/**
 * The typecodes of `sharedctypes.ts`, as Python's ctypes letters: for each,
 * the typed array that holds it, how a JavaScript value is checked and
 * converted on the way in (an integer keeps its low bits, `f` rounds to a
 * 32-bit float, a value of the wrong type throws `TypeError`), and how an item
 * is read and written (integers with `Atomics`, so that no read tears).
 *
 * @module
 */
import { beginCommit, endCommit } from "./fence.ts";

/** Python's ctypes typecodes that {@linkcode Value} and {@linkcode SharedArray} accept. */
export type Typecode = "b" | "B" | "h" | "H" | "i" | "I" | "l" | "L" | "q" | "Q" | "f" | "d" | "c";

/** What one item of a typecode reads as: `bigint` for `q`/`Q`, a one-character string for `c`, else a number. */
export type ItemOf<T extends Typecode> = T extends "q" | "Q" ? bigint : T extends "c" ? string : number;

/** What an item of a typecode accepts: also a safe integer for `q`/`Q`, and a byte (0-255) for `c`. */
export type InputOf<T extends Typecode> = T extends "q" | "Q" ? bigint | number
  : T extends "c" ? string | number
  : number;

/** The typed array behind a typecode. */
export type ViewOf<T extends Typecode> = T extends "q" ? BigInt64Array
  : T extends "Q" ? BigUint64Array
  : T extends "f" ? Float32Array
  : T extends "d" ? Float64Array
  : T extends "b" ? Int8Array
  : T extends "B" | "c" ? Uint8Array
  : T extends "h" ? Int16Array
  : T extends "H" ? Uint16Array
  : T extends "i" | "l" ? Int32Array
  : Uint32Array;

export type Item = number | bigint | string;
export type AnyView =
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array
  | Float32Array
  | Float64Array;

export interface Codec {
  array: { new (buffer: SharedArrayBuffer, offset?: number, length?: number): AnyView; BYTES_PER_ELEMENT: number };
  /** Checks and converts a JavaScript value to what the view stores. */
  check(value: unknown, where: string): number | bigint;
  /** Converts what the view holds to what users read. */
  read(raw: number | bigint): Item;
  /** Integer views: read and written with Atomics. */
  atomic: boolean;
}

/** An integer typecode: the store keeps the low bits of any integer, as C's conversion and a typed array do. */
function integer(array: Codec["array"], code: string): Codec {
  return {
    array,
    atomic: true,
    read: (raw) => raw as number,
    check(value, where) {
      if (typeof value !== "number" || !Number.isInteger(value)) {
        throw new TypeError(`${where}: typecode '${code}' holds integers, got ${describe(value)}`);
      }
      return value;
    },
  };
}

/** `q`/`Q`: a bigint, or an integer number, wrapped to 64 bits as C does. */
function big(array: Codec["array"], signed: boolean, code: string): Codec {
  return {
    array,
    atomic: true,
    read: (raw) => raw as bigint,
    check(value, where) {
      let big: bigint;
      if (typeof value === "bigint") big = value;
      else if (typeof value === "number" && Number.isInteger(value)) big = BigInt(value);
      else throw new TypeError(`${where}: typecode '${code}' holds 64-bit integers (bigint), got ${describe(value)}`);
      return signed ? BigInt.asIntN(64, big) : BigInt.asUintN(64, big);
    },
  };
}

/** `f`/`d`: any number; `f` rounds to the nearest 32-bit float (beyond its range: ±Infinity), as ctypes. */
function float(array: Codec["array"], code: string): Codec {
  return {
    array,
    atomic: false,
    read: (raw) => raw as number,
    check(value, where) {
      if (typeof value !== "number") {
        throw new TypeError(`${where}: typecode '${code}' holds numbers, got ${describe(value)}`);
      }
      return code === "f" ? Math.fround(value) : value;
    },
  };
}

const char: Codec = {
  array: Uint8Array,
  atomic: true,
  read: (raw) => String.fromCharCode(raw as number),
  check(value, where) {
    if (typeof value === "number") {
      // ctypes refuses a byte out of range here (c_char is not an integer type): so do we.
      if (!Number.isInteger(value)) throw new TypeError(`${where}: typecode 'c' holds a byte 0-255, got ${value}`);
      if (value < 0 || value > 255) throw new RangeError(`${where}: ${value} does not fit typecode 'c' (0 to 255)`);
      return value;
    }
    if (typeof value !== "string" || value.length !== 1) {
      throw new TypeError(`${where}: typecode 'c' holds one character (or a byte 0-255), got ${describe(value)}`);
    }
    const code = value.charCodeAt(0);
    if (code > 255) throw new RangeError(`${where}: '${value}' does not fit typecode 'c' (one byte: U+0000 to U+00FF)`);
    return code;
  },
};

export const codecs: Record<Typecode, Codec> = {
  b: integer(Int8Array, "b"),
  B: integer(Uint8Array, "B"),
  h: integer(Int16Array, "h"),
  H: integer(Uint16Array, "H"),
  i: integer(Int32Array, "i"),
  I: integer(Uint32Array, "I"),
  l: integer(Int32Array, "l"),
  L: integer(Uint32Array, "L"),
  q: big(BigInt64Array, true, "q"),
  Q: big(BigUint64Array, false, "Q"),
  f: float(Float32Array, "f"),
  d: float(Float64Array, "d"),
  c: char,
};

export function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "bigint") return `${value}n`;
  return typeof value === "number" ? String(value) : typeof value;
}

export function codecOf(typecode: unknown, what: string): Codec {
  if (typeof typecode !== "string" || !Object.hasOwn(codecs, typecode)) {
    throw new TypeError(
      `${what}: unknown typecode ${describe(typecode)}; use one of ${
        Object.keys(codecs).map((c) => `'${c}'`).join(" ")
      }`,
    );
  }
  return codecs[typecode as Typecode];
}

export function readItem(codec: Codec, view: AnyView, index: number): Item {
  return codec.read(codec.atomic ? Atomics.load(view as Int32Array, index) : view[index]);
}

/** A commit of `fence.ts`: a process reported ended writes no Value (its `.view` is raw memory, beyond reach). */
export function writeItem(codec: Codec, view: AnyView, index: number, raw: number | bigint): void {
  beginCommit();
  if (codec.atomic) Atomics.store(view as Int32Array, index, raw as number);
  else view[index] = raw as number;
  endCommit();
}
