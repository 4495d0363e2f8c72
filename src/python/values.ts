/**
 * The JavaScript shapes of the Python values that pickle carries and that
 * JavaScript has no type for: a tuple, a reference to a class or function
 * (module and name), and an object that a class built from arguments and
 * state. Both directions of `pickle.ts` use them.
 *
 * @module
 */

/**
 * A Python tuple. `loads` gives every tuple as a `PyTuple`; `dumps` writes a
 * `PyTuple` as a tuple and every other array as a list.
 *
 * @example
 * ```ts
 * import { PyTuple, tuple } from "@mp/multiprocessing/connection";
 * const t = tuple(1, "a");
 * console.log(t instanceof PyTuple, t.length); // true 2
 * ```
 */
export class PyTuple extends Array<unknown> {}

/**
 * Makes a {@linkcode PyTuple} of `items`.
 *
 * @example
 * ```ts
 * import { dumps, tuple } from "@mp/multiprocessing/connection";
 * dumps(tuple("get_queue", 1)); // Python reads ('get_queue', 1)
 * ```
 */
export function tuple(...items: unknown[]): PyTuple {
  // By index into a tuple of the right length: push() on an Array subclass takes V8's slow C++ path
  // (0.33 us against 0.02 us for a 4-tuple, measured on Node), and push(...items) fails past the argument limit.
  const t = new PyTuple(items.length);
  for (let i = 0; i < items.length; i++) t[i] = items[i];
  return t;
}

/**
 * A reference to a Python class or function by module and name, as pickle's
 * GLOBAL and STACK_GLOBAL carry it. Nothing is imported: it is a name.
 *
 * @example
 * ```ts
 * import { PyGlobal } from "@mp/multiprocessing/connection";
 * const keyError = new PyGlobal("builtins", "KeyError");
 * console.log(`${keyError}`); // builtins.KeyError
 * ```
 */
export class PyGlobal {
  /** The module that defines it, as Python's `__module__`. */
  readonly module: string;
  /** Its qualified name in that module, as Python's `__qualname__`. */
  readonly name: string;

  /** Makes the reference `module.name`. */
  constructor(module: string, name: string) {
    this.module = module;
    this.name = name;
  }

  /** `module.name`. */
  toString(): string {
    return `${this.module}.${this.name}`;
  }
}

/**
 * A Python object as pickle rebuilds it: a class (a {@linkcode PyGlobal})
 * called with `args`, then given `state`. `loads` makes one for every
 * REDUCE, NEWOBJ or NEWOBJ_EX on a class it does not turn into plain data
 * (an exception, a `datetime`, your own class); `dumps` writes it back the
 * way it came (`via`): NEWOBJ (`cls.__new__(cls, *args)`) or REDUCE
 * (`cls(*args)`), then BUILD with `state` when there is one.
 *
 * @example
 * ```ts
 * import { dumps, PyGlobal, PyObject } from "@mp/multiprocessing/connection";
 * const error = new PyObject(new PyGlobal("builtins", "KeyError"), ["missing"]);
 * error.via = "reduce";
 * dumps(error); // Python reads KeyError('missing')
 * ```
 */
export class PyObject {
  /** How the object is made: `"newobj"` (`cls.__new__(cls, *args, **kwargs)`) or `"reduce"` (`cls(*args)`). */
  via: "newobj" | "reduce" = "newobj";
  /** Keyword arguments of NEWOBJ_EX, if it came with any. */
  kwargs?: Record<string, unknown>;

  /** The class. */
  readonly cls: PyGlobal;
  /** The arguments of the call that makes it. */
  readonly args: unknown[];
  /** What BUILD gives it after the call (its `__setstate__` argument or `__dict__`), if anything. */
  state?: unknown;

  /** Makes the object `cls(*args)` with `state` (BUILD's argument) when given. */
  constructor(cls: PyGlobal, args: unknown[], state?: unknown) {
    this.cls = cls;
    this.args = args;
    this.state = state;
  }
}

/**
 * A value that pickle cannot carry, or bytes that are no valid pickle (garbage,
 * truncated, an opcode this reader refuses).
 *
 * @example
 * ```ts
 * import { dumps, PickleError } from "@mp/multiprocessing/connection";
 * try { dumps(new Date()); } catch (e) { console.log(e instanceof PickleError); } // true
 * ```
 */
export class PickleError extends Error {}
Object.defineProperty(PickleError.prototype, "name", { value: "PickleError", writable: true, configurable: true });
