/**
 * How values cross into another worker: Python's reduction. Plain data is
 * copied by the structured-clone algorithm. An object of this library (a
 * queue, a lock, a shared array …) says how it is sent by implementing
 * {@linkcode reduce}, and its module says how it is revived with
 * {@linkcode registerKind}; the receiver gets a working object that shares
 * state with the original. Errors travel with their class name, stack and
 * cause ({@linkcode reduceError}).
 *
 * Values that structured clone would silently damage (a class instance loses
 * its class and private state) or reject (functions, symbols) are refused
 * here, with the path of the offending value, before anything is sent.
 *
 * Where the sender allows it ({@linkcode DumpOptions.functions}: a process's
 * `args`, pool tasks, queue items, pipe messages), a function travels as
 * Python's pickle sends one: by reference (module and export name), found
 * again among the modules the receiver imported, or else as source text
 * (see `spawn.ts`).
 *
 * The same reductions go into bytes for queues and pipes (`pickle.ts`): the
 * SharedArrayBuffers in their states are parked with the main process
 * (`resource_sharer.ts`) and stand in the bytes as markers of an inline
 * kind ({@linkcode registerInlineKind}), revived before the reduction that
 * holds them.
 *
 * @module
 */
import {
  AuthenticationError,
  BrokenBarrierError,
  BrokenPoolError,
  BufferTooShort,
  Empty,
  EOFError,
  Full,
  ProcessError,
  TimeoutError,
} from "./errors.ts";
import {
  callerModule,
  describeTarget,
  exported,
  exportOf,
  type ExportRef,
  functionFrom,
  type TargetSpec,
} from "./spawn.ts";

/** The method by which a shareable object describes itself for another worker. */
export const reduce: unique symbol = Symbol.for("@mp/multiprocessing.reduce");

/** What a shareable object sends: its kind and the state to revive it from. */
export interface Reduction {
  /** The name under which the reviver was registered. */
  kind: string;
  /** Structured-cloneable state; may hold SharedArrayBuffers and MessagePorts. */
  state: unknown;
  /** Objects in `state` to transfer rather than copy (MessagePorts). */
  transfer?: Transferable[];
}

/** An object that can be sent to another worker. */
export interface Reducible {
  [reduce](): Reduction;
}

/** A value prepared for `postMessage`, with what must be transferred. */
export interface Dumped {
  data: unknown;
  transfer: Transferable[];
  /** Whether `data` holds revivable markers, so the receiver must walk it. */
  reduced: boolean;
}

/** The key that marks a reduced object in what is sent: its kind is the value. */
export const MARK = "@mp/reduced";

/** The kind of a function's marker; its state is a `TargetSpec`. */
const FUNCTION = "@mp/function";

/** How {@linkcode dump} treats what structured clone cannot carry. */
export interface DumpOptions {
  /** Let functions through, by reference or as source text; refused by default. */
  functions?: boolean;
  /** Where a function is looked up first in the receiver; by default the module that called into the library. */
  module?: string;
  /**
   * Let SharedArrayBuffers (this library's shared objects) into bytes, parked
   * with the resource sharer (`resource_sharer.ts`), which hands them out
   * once: for queue items and pipe messages, each received once. Not for a
   * manager, which keeps what it is sent and hands it out again.
   */
  shared?: boolean;
}

interface Marker {
  [MARK]: string;
  state: unknown;
}

const revivers = new Map<string, (state: unknown) => unknown>();

/** Registers how objects of `kind` are revived on the receiving side. */
export function registerKind(kind: string, revive: (state: unknown) => unknown): void {
  revivers.set(kind, revive);
}

/**
 * Kinds whose markers stand for a part of another reduction's state (a
 * parked SharedArrayBuffer, see `pickle.ts`): revived wherever they are,
 * inside the states of other markers too, before those are revived. Their
 * reviver learns the kind of the reduction they are part of, for its errors.
 */
const inlineKinds = new Map<string, (state: unknown, owner: string | undefined) => unknown>();

/** Registers a kind revived inside other reductions' states too (see {@linkcode inlineKinds}). */
export function registerInlineKind(kind: string, revive: (state: unknown, owner: string | undefined) => unknown): void {
  inlineKinds.set(kind, revive);
}

/** `value` (a reduction's state) with the inline markers inside it revived, in place. */
function reviveInline(value: unknown, owner: string, done: Set<object>): unknown {
  if (typeof value !== "object" || value === null || done.has(value)) return value;
  if (isMarker(value)) {
    const inline = inlineKinds.get(value[MARK]);
    if (inline) return inline(value.state, owner);
    done.add(value);
    value.state = reviveInline(value.state, value[MARK], done);
    return value;
  }
  done.add(value);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = reviveInline(value[i], owner, done);
  } else if (value instanceof Map) {
    for (const [k, v] of [...value]) value.set(k, reviveInline(v, owner, done));
  } else if (Object.getPrototypeOf(value) === Object.prototype) {
    const record = value as Record<string, unknown>;
    for (const key of Object.keys(record)) record[key] = reviveInline(record[key], owner, done);
  }
  return value;
}

function isReducible(value: object): value is Reducible {
  return typeof (value as Partial<Reducible>)[reduce] === "function";
}

const typedArray = Object.getPrototypeOf(Int8Array);

/** Built-ins that structured clone copies faithfully, and which hold nothing to reduce. */
const cloneable: ReadonlyArray<abstract new (...args: never[]) => unknown> = [
  Date,
  RegExp,
  ArrayBuffer,
  DataView,
  typedArray,
  Error,
  Boolean,
  Number,
  String,
  ...(typeof SharedArrayBuffer === "function" ? [SharedArrayBuffer] : []),
  ...(typeof Blob === "function" ? [Blob] : []),
];

function describe(value: unknown): string {
  if (typeof value === "function") return `a function (${value.name || "anonymous"})`;
  if (typeof value === "symbol") return `a symbol (${String(value)})`;
  const name = (value as object).constructor?.name;
  return name ? `an instance of ${name}` : "an object with a foreign prototype";
}

function refuse(path: string, value: unknown): never {
  throw new TypeError(
    `${path} is ${describe(value)}, which cannot be sent to another process: ` +
      "send plain data (objects, arrays, numbers, strings, Maps, typed arrays …) " +
      "or an object of this library (Queue, Lock, Value …)",
  );
}

/**
 * Walks `value` once: refuses what cannot be sent and reports whether any
 * reducible object is inside. Plain data is not copied.
 */
function inspect(value: unknown, path: string, seen: Set<object>, functions: boolean): boolean {
  if (typeof value === "function" && functions) {
    // Refuses a native or bound function here, with its path, as it has no source to fall back on.
    describeTarget(value, undefined, path);
    return true;
  }
  if (typeof value === "function" || typeof value === "symbol") refuse(path, value);
  if (typeof value !== "object" || value === null || seen.has(value)) return false;
  seen.add(value);
  if (isReducible(value)) return true;
  if (Array.isArray(value)) {
    let found = false;
    for (let i = 0; i < value.length; i++) found = inspect(value[i], `${path}[${i}]`, seen, functions) || found;
    return found;
  }
  if (value instanceof Map) {
    let found = false;
    for (const [k, v] of value) {
      found = inspect(k, `${path} key`, seen, functions) || found;
      found = inspect(v, `${path}.get(${String(k)})`, seen, functions) || found;
    }
    return found;
  }
  if (value instanceof Set) {
    let found = false;
    for (const v of value) found = inspect(v, `${path} item`, seen, functions) || found;
    return found;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) {
    if (cloneable.some((type) => value instanceof type)) return false;
    refuse(path, value);
  }
  let found = false;
  for (const key of Object.keys(value)) {
    found = inspect((value as Record<string, unknown>)[key], `${path}.${key}`, seen, functions) || found;
  }
  return found;
}

/** What {@linkcode replace} carries through one walk. */
interface Walk {
  transfer: Transferable[];
  copies: Map<object, unknown>;
  /** Where functions are looked up first: found on the first function met. */
  module?: string;
}

/** Copies the containers of `value`, replacing reducible objects (and functions) with markers. */
function replace(value: unknown, walk: Walk): unknown {
  const { transfer, copies } = walk;
  if (typeof value === "function") {
    const known = copies.get(value);
    if (known !== undefined) return known;
    walk.module ??= callerModule();
    const spec: TargetSpec = describeTarget(value, walk.module, "send");
    const marker: Marker = { [MARK]: FUNCTION, state: spec };
    copies.set(value, marker);
    return marker;
  }
  if (typeof value !== "object" || value === null) return value;
  const known = copies.get(value);
  if (known !== undefined) return known;
  if (isReducible(value)) {
    const reduction = value[reduce]();
    if (reduction.transfer) transfer.push(...reduction.transfer);
    const marker: Marker = { [MARK]: reduction.kind, state: reduction.state };
    copies.set(value, marker);
    return marker;
  }
  if (Array.isArray(value)) {
    const copy: unknown[] = [];
    copies.set(value, copy);
    for (const item of value) copy.push(replace(item, walk));
    return copy;
  }
  if (value instanceof Map) {
    const copy = new Map();
    copies.set(value, copy);
    for (const [k, v] of value) copy.set(replace(k, walk), replace(v, walk));
    return copy;
  }
  if (value instanceof Set) {
    const copy = new Set();
    copies.set(value, copy);
    for (const v of value) copy.add(replace(v, walk));
    return copy;
  }
  if (Object.getPrototypeOf(value) !== Object.prototype && Object.getPrototypeOf(value) !== null) return value;
  const copy: Record<string, unknown> = {};
  copies.set(value, copy);
  for (const key of Object.keys(value)) copy[key] = replace((value as Record<string, unknown>)[key], walk);
  return copy;
}

/**
 * Prepares `value` for `postMessage`. `path` names it in errors
 * (`args[1].queue is a function …`).
 *
 * @throws {TypeError} when something inside cannot be sent.
 */
export function dump(value: unknown, path: string, options: DumpOptions = {}): Dumped {
  if (!inspect(value, path, new Set(), options.functions === true)) {
    return { data: value, transfer: [], reduced: false };
  }
  const walk: Walk = { transfer: [], copies: new Map(), module: options.module };
  return { data: replace(value, walk), transfer: walk.transfer, reduced: true };
}

function isMarker(value: object): value is Marker {
  return MARK in value;
}

/**
 * The states of the reductions of `kind` in `data` as {@linkcode dump} left
 * it: what a process that keeps dumped data needs to know of the objects in it.
 */
export function reductionsIn(data: unknown, kind: string): unknown[] {
  const found: unknown[] = [];
  const done = new Set<object>();
  const visit = (value: unknown): void => {
    if (typeof value !== "object" || value === null || done.has(value)) return;
    done.add(value);
    if (isMarker(value)) {
      if (value[MARK] === kind) found.push(value.state);
    } else if (value instanceof Map) {
      for (const [k, v] of value) (visit(k), visit(v));
    } else if (Array.isArray(value) || value instanceof Set) {
      for (const item of value) visit(item);
    } else if (Object.getPrototypeOf(value) === Object.prototype) {
      for (const item of Object.values(value)) visit(item);
    }
  };
  visit(data);
  return found;
}

function revive(value: unknown, done: Set<object>): unknown {
  if (typeof value !== "object" || value === null || done.has(value)) return value;
  if (isMarker(value)) {
    const inline = inlineKinds.get(value[MARK]);
    if (inline) return inline(value.state, undefined);
    const reviver = revivers.get(value[MARK]);
    if (!reviver) throw new TypeError(`no reviver is registered for a ${value[MARK]}; is its module loaded?`);
    return reviver(inlineKinds.size ? reviveInline(value.state, value[MARK], new Set()) : value.state);
  }
  done.add(value);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = revive(value[i], done);
  } else if (value instanceof Map) {
    for (const [k, v] of [...value]) {
      const key = revive(k, done);
      if (key !== k) value.delete(k);
      value.set(key, revive(v, done));
    }
  } else if (value instanceof Set) {
    for (const v of [...value]) {
      const item = revive(v, done);
      if (item !== v) (value.delete(v), value.add(item));
    }
  } else if (Object.getPrototypeOf(value) === Object.prototype) {
    const record = value as Record<string, unknown>;
    for (const key of Object.keys(record)) record[key] = revive(record[key], done);
  }
  return value;
}

/** Turns received data back into values, reviving this library's objects. */
export function load(data: unknown, reduced: boolean): unknown {
  return reduced ? revive(data, new Set()) : data;
}

registerKind(FUNCTION, (state) => functionFrom(state as TargetSpec));

/** An error as it crosses between workers: class name, message, stack, cause. */
export interface ReducedError {
  name: string;
  message: string;
  stack?: string;
  cause?: ReducedError | { value: unknown };
  props?: Record<string, unknown>;
  /** Where its class is exported, when a module this worker imported exports it: revived as that class. */
  type?: ExportRef;
  /** A thrown value that is not an Error travels as itself: the receiver gets it back, as `await` would. */
  thrown?: { value: unknown };
}

/** Prepares an error (or any thrown value) for another worker, keeping its class name, and its class where known. */
export function reduceError(error: unknown): ReducedError {
  if (!(error instanceof Error)) {
    return { name: "Error", message: safeText(error), thrown: { value: safeClone(error) } };
  }
  const reduced: ReducedError = { name: error.name, message: error.message, stack: error.stack };
  const type = builtins[error.constructor?.name] === error.constructor
    ? undefined
    : ownErrors[error.constructor?.name] === error.constructor
    ? { module: OWN, name: error.constructor.name }
    : exportOf(error.constructor);
  if (type) reduced.type = type;
  if ("cause" in error) {
    reduced.cause = error.cause instanceof Error ? reduceError(error.cause) : { value: safeClone(error.cause) };
  }
  const props: Record<string, unknown> = {};
  for (const key of Object.keys(error)) if (key !== "name") props[key] = safeClone((error as never)[key]);
  if (Object.keys(props).length) reduced.props = props;
  return reduced;
}

function safeClone(value: unknown): unknown {
  try {
    return structuredClone(value);
  } catch {
    return safeText(value);
  }
}

/** `String(value)`, which throws for an object without a prototype. */
function safeText(value: unknown): string {
  try {
    return String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}

const builtins: Record<string, ErrorConstructor> = {
  Error,
  TypeError,
  RangeError,
  ReferenceError,
  SyntaxError,
  EvalError,
  URIError,
};

/**
 * Revives an error from {@linkcode reduceError}: same name, message, stack
 * and cause; an instance of its own class when that class's module is
 * already known here (see {@linkcode reviveErrorClass}); a thrown value that
 * was not an Error comes back as that value.
 */
export function reviveError(reduced: ReducedError): unknown {
  if (reduced.thrown) return reduced.thrown.value;
  const found = reduced.type && classOf(reduced.type);
  return fill(errorOf(found instanceof Promise ? undefined : found, reduced), reduced);
}

/**
 * As {@linkcode reviveError}, importing the module that exports the error's
 * class first when it is not known here yet (then the result is a Promise),
 * so that `instanceof` holds in the parent as Python re-raises the same
 * class. Without waiting for a module still being evaluated here.
 */
export function reviveErrorClass(reduced: ReducedError): unknown {
  if (reduced.thrown) return reduced.thrown.value;
  const found = reduced.type && classOf(reduced.type);
  if (found instanceof Promise) return found.then((type) => fill(errorOf(type, reduced), reduced));
  return fill(errorOf(found, reduced), reduced);
}

/** The module name under which this library's own error classes travel: every worker has them. */
const OWN = "@mp/multiprocessing";

const ownErrors: Record<string, unknown> = {
  ProcessError,
  TimeoutError,
  BufferTooShort,
  AuthenticationError,
  BrokenPoolError,
  EOFError,
  Empty,
  Full,
  BrokenBarrierError,
};

function classOf(ref: ExportRef): unknown | Promise<unknown> {
  return ref.module === OWN ? ownErrors[ref.name] : exported(ref);
}

/** An empty error of the class `type` (not constructed: its constructor may need arguments), or of a built-in. */
function errorOf(type: unknown, reduced: ReducedError): Error {
  if (typeof type === "function" && type.prototype instanceof Error) {
    const error = Object.create(type.prototype) as Error;
    // Own and not enumerable, as on an error that was constructed.
    for (const key of ["message", "stack"] as const) {
      Object.defineProperty(error, key, { value: reduced[key], configurable: true, writable: true });
    }
    if (error.name !== reduced.name) {
      Object.defineProperty(error, "name", { value: reduced.name, configurable: true, writable: true });
    }
    return error;
  }
  const error = new (builtins[reduced.name] ?? Error)(reduced.message);
  if (!(reduced.name in builtins)) {
    Object.defineProperty(error, "name", { value: reduced.name, configurable: true, writable: true });
  }
  return error;
}

function fill(error: Error, reduced: ReducedError): Error {
  if (reduced.stack !== undefined) error.stack = reduced.stack;
  if (reduced.cause !== undefined) {
    const cause = "value" in reduced.cause ? reduced.cause.value : reviveError(reduced.cause as ReducedError);
    // Not enumerable, as `new Error(message, { cause })` makes it.
    Object.defineProperty(error, "cause", { value: cause, configurable: true, writable: true });
  }
  if (reduced.props) Object.assign(error, reduced.props);
  return error;
}
