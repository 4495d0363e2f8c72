/**
 * The in-program manager's wire, declared once: the bytes of a request that
 * a caller writes into the manager's request ring and the server reads, the
 * bytes of an answer that the server writes into the caller's answer ring,
 * what a proxy is when it travels, and what the control port (comlink, from
 * the process that started the server) offers. Both sides import this file;
 * neither writes or reads a byte of the wire anywhere else.
 *
 * A request: five little-endian Int32 (op, the caller's pid, the call's id,
 * 0 when no answer is wanted, the object's id, the name's length), the name
 * (a method or a typeid) as UTF-8, then the pickled payload.
 * An answer: the call's id (Int32), VALUE or ERROR (one byte), the pickle.
 *
 * @module
 */
import type * as ComlinkModule from "comlink";
import type { TargetSpec } from "../spawn.ts";

/** The kinds of object a manager's server keeps, by Python's typeid. */
export type Builtin = "dict" | "list" | "Namespace";
/** "object": an object of a user's class (Python's `BaseManager.register`), reached through an AutoProxy. */
export type Typeid = Builtin | "object";

/** What a request asks of the server. Only CALL is answered. */
export const CALL = 0;
/** A new object; the request's name is its typeid, its payload the initial value. */
export const CREATE = 1;
/** One more handle on an object: a proxy is being sent, and the receiver will hold it. */
export const INCREF = 2;
/** A handle given back: a proxy was garbage-collected. */
export const DECREF = 3;
/** The calling process ends: its payload is its handles as `[id, count]` pairs. */
export const BYE = 4;
/**
 * A proxy arrived in the calling process (sent to it, or in a result): the
 * handle counted for it when it was sent is now this process's, and goes
 * back if the process is terminated without a BYE.
 */
export const ADOPT = 5;
/** A request's operation. */
export type Op = typeof CALL | typeof CREATE | typeof INCREF | typeof DECREF | typeof BYE | typeof ADOPT;

/** A request's fixed head, five Int32: op, the caller's pid, the call's id (0 when unanswered), the object's id, the name's length. */
const HEAD = 20;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Method names and typeids as bytes, kept: a program calls few distinct ones, and encoding is a tenth of a call. */
const names = new Map<string, Uint8Array>();

function nameBytes(name: string): Uint8Array {
  let bytes = names.get(name);
  if (!bytes) {
    bytes = encoder.encode(name);
    if (names.size < 1_024) names.set(name, bytes);
  }
  return bytes;
}

function readName(bytes: Uint8Array, start: number, end: number): string {
  let name = "";
  for (let i = start; i < end; i++) {
    if (bytes[i] >= 0x80) return decoder.decode(bytes.subarray(start, end));
    name += String.fromCharCode(bytes[i]);
  }
  return name;
}

function writeInt(bytes: Uint8Array, at: number, value: number): void {
  bytes[at] = value;
  bytes[at + 1] = value >> 8;
  bytes[at + 2] = value >> 16;
  bytes[at + 3] = value >> 24;
}

function readInt(bytes: Uint8Array, at: number): number {
  return bytes[at] | (bytes[at + 1] << 8) | (bytes[at + 2] << 16) | (bytes[at + 3] << 24);
}

/** One request as bytes: the head, the name (a method or a typeid), then the pickled payload. */
export function request(
  op: Op,
  pid: number,
  call: number,
  object: number,
  name: string,
  payload?: Uint8Array,
): Uint8Array {
  const encoded = nameBytes(name);
  const bytes = new Uint8Array(HEAD + encoded.length + (payload?.length ?? 0));
  writeInt(bytes, 0, op);
  writeInt(bytes, 4, pid);
  writeInt(bytes, 8, call);
  writeInt(bytes, 12, object);
  writeInt(bytes, 16, encoded.length);
  bytes.set(encoded, HEAD);
  if (payload) bytes.set(payload, HEAD + encoded.length);
  return bytes;
}

/** A request as the server reads it. */
export interface Request {
  op: Op;
  pid: number;
  call: number;
  object: number;
  name: string;
  payload: Uint8Array;
}

/** The request in `bytes` (the payload is a view, not a copy). */
export function readRequest(bytes: Uint8Array): Request {
  const end = HEAD + readInt(bytes, 16);
  return {
    op: readInt(bytes, 0) as Op,
    pid: readInt(bytes, 4),
    call: readInt(bytes, 8),
    object: readInt(bytes, 12),
    name: readName(bytes, HEAD, end),
    payload: bytes.subarray(end),
  };
}

/** An answer's kind: the pickle is the result, or the error the call threw. */
export const VALUE = 0;
export const ERROR = 1;

/** An answer: the call's id, whether it failed, then the pickled result or error. */
export function answer(call: number, kind: typeof VALUE | typeof ERROR, payload: Uint8Array): Uint8Array {
  const bytes = new Uint8Array(5 + payload.length);
  writeInt(bytes, 0, call);
  bytes[4] = kind;
  bytes.set(payload, 5);
  return bytes;
}

/** An answer as the caller reads it (the payload is a view). */
export interface Answer {
  call: number;
  failed: boolean;
  payload: Uint8Array;
}

/** The answer in `bytes`. */
export function readAnswer(bytes: Uint8Array): Answer {
  return { call: readInt(bytes, 0), failed: bytes[4] === ERROR, payload: bytes.subarray(5) };
}

/** What a proxy is, wherever it goes: its manager's block, its object, its type (and class). */
export interface ProxyState {
  address: string;
  id: number;
  typeid: Typeid;
  className?: string;
  /** The methods an AutoProxy offers, when its registration names them. */
  exposed?: string[];
}

/** The reduction kind of a proxy: a proxy pickles as `{ kind: PROXY, state: ProxyState }`. */
export const PROXY = "managers.proxy";

/** The method a proxy asks for to learn which methods it may call (Python's `_exposed_`); no method has this name. */
export const EXPOSED = "#exposed";

/** What a registered typeid tells the server (Python's `register(exposed=, method_to_typeid=)`), as plain data. */
export interface Registration {
  exposed?: string[];
  methodToTypeid?: Record<string, string>;
}

/** How the server makes and serves an object of a registered typeid, and the registrations its results may need. */
export interface How extends Registration {
  /** `new` for a class, a plain call for a factory function. */
  construct: boolean;
  /** Every typeid registered on the manager's class: a method's result may become any of them. */
  types: Record<string, Registration>;
}

/** What CREATE carries for an object of a user's class: where the class is, its arguments, and its registration. */
export type Recipe = [spec: TargetSpec, args: unknown[], how?: How];

/** What the server exposes on the manager's own port (through comlink), to the process that started it. */
export interface Control {
  ready(): boolean;
  numberOfObjects(): number;
  shutdown(): void;
}

/**
 * comlink, which carries `Control`, loaded by the first `Manager()` or
 * server: a child pays to load it only if it runs one (it was a third of
 * the library's load time on Deno).
 */
let Comlink: typeof ComlinkModule | undefined;

/** comlink, loaded once. */
export async function loadComlink(): Promise<typeof ComlinkModule> {
  return Comlink ??= await import("comlink");
}
