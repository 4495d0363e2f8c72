/**
 * The second pass of `loads` for a pickle whose dicts were built as Maps
 * (because one had a key that is not a str): every Map whose keys are all
 * str becomes a plain object, keeping shared and cyclic references.
 *
 * @module
 */
import { PickleError, PyGlobal, PyObject } from "./values.ts";

/** Maps whose keys are all str become plain objects, keeping shared and cyclic references. */
export function settle(root: unknown): unknown {
  const done = new Map<object, unknown>();
  const visit = (value: unknown): unknown => {
    if (typeof value !== "object" || value === null || value instanceof Uint8Array || value instanceof PyGlobal) {
      return value;
    }
    if (done.has(value)) return done.get(value);
    if (value instanceof Map) {
      const stringKeys = [...value.keys()].every((k) => typeof k === "string");
      const out: Map<unknown, unknown> | Record<string, unknown> = stringKeys ? {} : new Map();
      done.set(value, out);
      for (const [k, v] of value) {
        if (out instanceof Map) out.set(visit(k), visit(v));
        else if (k === "__proto__") {
          Object.defineProperty(out, k, { value: visit(v), writable: true, enumerable: true, configurable: true });
        } else out[k as string] = visit(v);
      }
      return out;
    }
    done.set(value, value);
    if (Array.isArray(value)) { for (let i = 0; i < value.length; i++) value[i] = visit(value[i]); }
    else if (value instanceof Set) {
      const items = [...value];
      value.clear();
      for (const item of items) value.add(visit(item));
    } else if (value instanceof PyObject) {
      for (let i = 0; i < value.args.length; i++) value.args[i] = visit(value.args[i]);
      value.state = visit(value.state);
    } else {
      for (const k of Object.keys(value)) {
        (value as Record<string, unknown>)[k] = visit((value as Record<string, unknown>)[k]);
      }
    }
    return value;
  };
  try {
    return visit(root);
  } catch (error) {
    if (error instanceof RangeError) throw new PickleError("the pickle nests too deeply to rebuild");
    throw error;
  }
}
