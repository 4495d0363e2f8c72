/**
 * Python's `pickle` for plain data: what a socket `Connection`'s `send` and
 * `recv` put on the wire, so that a Python program on the other end reads
 * and writes the same values (see `load.ts` and `dump.ts` for the mapping).
 *
 * @example
 * ```ts
 * import { dumps, loads, tuple } from "@mp/multiprocessing/connection";
 * const bytes = dumps({ point: tuple(1, 2), tags: new Set(["a"]) });
 * console.log(loads(bytes)); // { point: PyTuple(2) [1, 2], tags: Set(1) { "a" } }
 * ```
 *
 * @module
 */
export { type DumpOptions, dumps } from "./dump.ts";
export { type LoadOptions, loads } from "./load.ts";
export { HIGHEST_PROTOCOL } from "./opcodes.ts";
export { PickleError, PyGlobal, PyObject, PyTuple, tuple } from "./values.ts";
