/**
 * The remote manager's wire, declared once for the server and the client: it
 * is CPython 3.11's `multiprocessing.managers` protocol, pickled, so either
 * end may be a Python program.
 *
 * - A request is the tuple `(ident, methodname, args, kwds)`. On a fresh
 *   connection (after the authkey handshake) `ident` is `None` and
 *   `methodname` one of the server's own methods ({@linkcode SERVER_METHODS});
 *   `accept_connection(name)` turns the connection into one that calls
 *   methods of managed objects, `ident` naming the object.
 * - A reply is `(kind, value)`: `#RETURN` a value, `#ERROR` the exception the
 *   method raised, `#TRACEBACK` a formatted error of the server itself,
 *   `#UNSERIALIZABLE` a result that could not be pickled, `#PROXY`
 *   `(exposed, token)` for a result kept in the server.
 * - A managed object is named by a `Token(typeid, address, id)`, pickled as
 *   `multiprocessing.managers.Token` with its state tuple; a proxy travels as
 *   `RebuildProxy(proxytype, token, "pickle", kwds)`.
 *
 * One extension, which a Python server refuses and so a client can tell it
 * is talking to one of ours: `lease()`, on a connection kept open, makes the
 * server count the references created and increfed on that connection as
 * that client's, so that they are released when the connection closes (a
 * client that was killed frees its objects). Python's server counts them
 * globally, so a killed Python client leaks them.
 *
 * @module
 */
import { AuthenticationError, BrokenBarrierError, Empty, Full, TimeoutError } from "../../errors.ts";
import { PyGlobal, PyObject, type PyTuple, tuple } from "../../python/pickle.ts";

/** The module Python's manager classes live in. */
const MANAGERS = "multiprocessing.managers";

/** The methods a server serves on a fresh connection: Python's `Server.public`, and our `lease`. */
export const SERVER_METHODS: readonly string[] = [
  "shutdown",
  "create",
  "accept_connection",
  "get_methods",
  "debug_info",
  "number_of_objects",
  "dummy",
  "incref",
  "decref",
  "lease",
];

/** A reply's kind. */
export type ReplyKind = "#RETURN" | "#ERROR" | "#TRACEBACK" | "#UNSERIALIZABLE" | "#PROXY";

/** The address of a manager: `[host, port]` for TCP, a path for a Unix socket. */
export type Address = readonly [host: string, port: number] | string;

/** A request as it is pickled: `(ident, methodname, args, kwds)`. */
export function request(ident: string | null, method: string, args: readonly unknown[] = []): PyTuple {
  return tuple(ident, method, tuple(...args), {});
}

/** What a request carries, read back; `undefined` when the message is not a request. */
export interface Request {
  ident: string | null;
  method: string;
  args: unknown[];
  kwds: Record<string, unknown>;
}

/** Reads a request; throws a `TypeError` describing a message that is not one (garbage from a peer). */
export function readRequest(message: unknown): Request {
  if (!Array.isArray(message) || message.length !== 4) {
    throw new TypeError(`a manager request is a tuple (ident, methodname, args, kwds); got ${describe(message)}`);
  }
  const [ident, method, args, kwds] = message;
  if ((ident !== null && typeof ident !== "string") || typeof method !== "string" || !Array.isArray(args)) {
    throw new TypeError(`a manager request is a tuple (ident, methodname, args, kwds); got ${describe(message)}`);
  }
  return { ident, method, args, kwds: kwdsOf(kwds) };
}

function kwdsOf(kwds: unknown): Record<string, unknown> {
  if (kwds instanceof Map) return Object.fromEntries(kwds);
  if (kwds !== null && typeof kwds === "object" && !Array.isArray(kwds)) return kwds as Record<string, unknown>;
  return {};
}

/** A short description of a value for an error message. */
export function describe(value: unknown): string {
  if (value instanceof Uint8Array) return `${value.length} bytes`;
  try {
    const text = JSON.stringify(value, (_, v) => typeof v === "bigint" ? `${v}n` : v);
    return text === undefined ? String(value) : text.length > 80 ? `${text.slice(0, 77)}...` : text;
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/** A reply as it is pickled. */
export function reply(kind: ReplyKind, value: unknown): PyTuple {
  return tuple(kind, value);
}

// ---- Tokens and proxies --------------------------------------------------

/**
 * Python's `Token`: what names one object in one manager's server.
 *
 * @example
 * ```ts
 * import { Token } from "@mp/multiprocessing/managers";
 * const token = new Token("dict", ["127.0.0.1", 50000], "7f3a");
 * console.log(token.typeid); // "dict"
 * ```
 */
export class Token {
  /** The registered type. */
  typeid: string;
  /** The server's address. */
  address: Address;
  /** The object's id in the server. */
  id: string;

  /**
   * Names object `id` of type `typeid` in the server at `address`.
   *
   * @param typeid the registered type
   * @param address its server
   * @param id its id in the server
   */
  constructor(typeid: string, address: Address, id: string) {
    this.typeid = typeid;
    this.address = address;
    this.id = id;
  }

  /** Python's repr. */
  toString(): string {
    return `Token(typeid='${this.typeid}', address=${JSON.stringify(this.address)}, id='${this.id}')`;
  }
}

/** An address as Python expects it: a tuple for TCP (a list would not be understood), a str for a path. */
export function pyAddress(address: Address): unknown {
  return typeof address === "string" ? address : tuple(address[0], address[1]);
}

/** An address read from Python: a `(host, port)` tuple or a path. */
export function readAddress(value: unknown): Address {
  if (typeof value === "string") return value;
  if (Array.isArray(value) && value.length === 2 && typeof value[0] === "string") {
    return [value[0], Number(value[1])];
  }
  throw new TypeError(`not a manager address: ${describe(value)}`);
}

/** A token as Python pickles it: `Token.__new__(Token)` then `__setstate__((typeid, address, id))`. */
export function pickleToken(token: Token): PyObject {
  return new PyObject(new PyGlobal(MANAGERS, "Token"), [], tuple(token.typeid, pyAddress(token.address), token.id));
}

/** Python's `cls(*args)`, pickled with REDUCE (an exception, `RebuildProxy(...)`). */
export function called(module: string, name: string, args: unknown[]): PyObject {
  const object = new PyObject(new PyGlobal(module, name), args);
  object.via = "reduce";
  return object;
}

/** Whether `value` is the global `module.name`. */
function isGlobal(value: unknown, module: string, name: string): boolean {
  return value instanceof PyGlobal && value.module === module && value.name === name;
}

/** A Token read back, or `undefined` when `value` is not one. */
export function readToken(value: unknown): Token | undefined {
  if (!(value instanceof PyObject)) return undefined;
  const isToken = isGlobal(value.cls, MANAGERS, "Token") ||
    (isGlobal(value.cls, "copyreg", "__newobj__") && isGlobal(value.args[0], MANAGERS, "Token"));
  if (!isToken || !Array.isArray(value.state) || value.state.length !== 3) return undefined;
  const [typeid, address, id] = value.state;
  if (typeof typeid !== "string" || typeof id !== "string") return undefined;
  return new Token(typeid, readAddress(address), id);
}

/** A proxy as Python pickles it: `RebuildProxy(proxytype, token, "pickle", kwds)`. */
export function pickleProxy(proxytype: string, token: Token, exposed?: readonly string[]): PyObject {
  const kwds = exposed ? { exposed: tuple(...exposed) } : {};
  return called(MANAGERS, "RebuildProxy", [new PyGlobal(MANAGERS, proxytype), pickleToken(token), "pickle", kwds]);
}

/** A pickled proxy read back: its token and exposed methods; `undefined` when `value` is not one. */
export function readProxy(value: unknown): { token: Token; exposed?: string[] } | undefined {
  if (!(value instanceof PyObject) || !isGlobal(value.cls, MANAGERS, "RebuildProxy")) return undefined;
  const token = readToken(value.args[1]);
  if (!token) return undefined;
  const exposed = kwdsOf(value.args[3]).exposed;
  return { token, exposed: Array.isArray(exposed) ? exposed.map(String) : undefined };
}

/** Whether a value may hold pickled proxies, so that it needs a walk (plain scalars never do). */
export function mayHoldProxies(value: unknown): boolean {
  return value !== null && typeof value === "object" && !(value instanceof Uint8Array);
}

/** Replaces every pickled proxy (or every value `change` picks) inside `value`, in place where it can. */
export function walk(value: unknown, change: (value: unknown) => unknown): unknown {
  const changed = change(value);
  if (changed !== value) return changed;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = walk(value[i], change);
  } else if (value instanceof Map) {
    for (const [key, item] of value) value.set(key, walk(item, change));
  } else if (value instanceof PyObject) {
    value.args.forEach((arg, i) => (value.args[i] = walk(arg, change)));
    if (value.state !== undefined) value.state = walk(value.state, change);
  } else if (value !== null && typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
    for (const key of Object.keys(value)) {
      (value as Record<string, unknown>)[key] = walk((value as Record<string, unknown>)[key], change);
    }
  }
  return value;
}

// ---- Errors ---------------------------------------------------------------

/**
 * An error the server reported without an exception object (Python's
 * `#TRACEBACK` and `#UNSERIALIZABLE`): its text is the server's traceback.
 *
 * @example
 * ```ts
 * import { RemoteError } from "@mp/multiprocessing/managers";
 * const error = new RemoteError("Traceback ...\nAssertionError: 'x' unrecognized");
 * console.log(error.name); // "RemoteError"
 * ```
 */
export class RemoteError extends Error {
  /** `"RemoteError"`, as Python's `multiprocessing.managers.RemoteError`. */
  override name = "RemoteError";
}

/**
 * An exception raised by a method in the manager's server that has no
 * JavaScript counterpart: `pythonType` is its class (`builtins.ValueError`),
 * `args` its arguments.
 *
 * @example
 * ```ts
 * import { PythonException } from "@mp/multiprocessing/managers";
 * const error = new PythonException("builtins.ValueError", ["bad"]);
 * console.log(error.message); // "ValueError: bad"
 * ```
 */
export class PythonException extends Error {
  /** `"PythonException"`: the Python class is in {@linkcode PythonException.pythonType}. */
  override name = "PythonException";
  /** `module.name` of the exception's class. */
  readonly pythonType: string;
  /** Its arguments. */
  readonly args: unknown[];

  /**
   * The exception that Python raised as `pythonType(*args)`; its message
   * reads as Python prints it (`ValueError: bad`).
   *
   * @param pythonType `module.name` of the exception's class
   * @param args its arguments
   */
  constructor(pythonType: string, args: unknown[]) {
    super(
      `${pythonType.replace(/^builtins\./, "")}: ${
        args.map((arg) => typeof arg === "string" ? arg : describe(arg)).join(", ")
      }`,
    );
    this.pythonType = pythonType;
    this.args = args;
  }
}

/** Python's exception classes that become the library's own, and back. */
const toJs: Record<string, (message: string) => Error> = {
  "builtins.KeyError": (message) => new RangeError(message),
  "builtins.IndexError": (message) => new RangeError(message),
  "builtins.TypeError": (message) => new TypeError(message),
  "_queue.Empty": (message) => new Empty(message || "the queue is empty"),
  "queue.Full": (message) => new Full(message || "the queue is full"),
  "threading.BrokenBarrierError": (message) => new BrokenBarrierError(message || undefined),
  "multiprocessing.context.TimeoutError": (message) => new TimeoutError(message || "the result is not ready"),
  "multiprocessing.context.AuthenticationError": (message) => new AuthenticationError(message),
};

/**
 * An exception from a `#ERROR` reply as a JavaScript error: KeyError and
 * IndexError are a `RangeError` (as the in-program manager's proxies
 * reject), TypeError a `TypeError`, queue.Empty/Full the library's
 * `Empty`/`Full`, threading.BrokenBarrierError its `BrokenBarrierError`;
 * others a {@linkcode PythonException}.
 */
export function reviveException(value: unknown): Error {
  if (!(value instanceof PyObject) || !(value.cls instanceof PyGlobal)) {
    return new RemoteError(`the server raised ${describe(value)}`);
  }
  const type = `${value.cls.module}.${value.cls.name}`;
  const args = value.args;
  const message = type === "builtins.KeyError"
    ? `KeyError: ${args.map((arg) => typeof arg === "string" ? `'${arg}'` : describe(arg)).join(", ")}`
    : args.map((arg) => typeof arg === "string" ? arg : describe(arg)).join(", ");
  const make = toJs[type];
  if (!make) return new PythonException(type, args);
  const error = make(message);
  (error as Error & { pythonType?: string }).pythonType = type;
  return error;
}

/** A JavaScript error as the Python exception a Python peer would raise: `(cls, (message,))`. */
export function pickleException(error: unknown): PyObject {
  if (error instanceof PythonException) {
    const [module, name] = splitType(error.pythonType);
    return called(module, name, [...error.args]);
  }
  const tagged = (error as { pythonType?: string } | null)?.pythonType;
  const message = error instanceof Error ? error.message : String(error);
  const type = tagged ??
    (error instanceof Empty
      ? "_queue.Empty"
      : error instanceof Full
      ? "queue.Full"
      : error instanceof BrokenBarrierError
      ? "threading.BrokenBarrierError"
      : error instanceof TypeError
      ? "builtins.TypeError"
      : error instanceof RangeError
      ? "builtins.IndexError"
      : "builtins.RuntimeError");
  const [module, name] = splitType(type);
  return called(module, name, [message]);
}

function splitType(type: string): [string, string] {
  const dot = type.lastIndexOf(".");
  return [type.slice(0, dot), type.slice(dot + 1)];
}

/** A Python exception to raise from a server-side method: `raise KeyError(key)`. */
export function pythonError(type: string, ...args: unknown[]): PythonException {
  return new PythonException(type.includes(".") ? type : `builtins.${type}`, args);
}
