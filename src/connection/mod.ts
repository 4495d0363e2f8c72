/**
 * Python's `multiprocessing.connection` across OS processes and hosts:
 * `Listener`, `Client`, `wait`, and the pickle that a socket `Connection`
 * speaks, wire-compatible with CPython's.
 *
 * @example
 * ```ts
 * import { dumps, loads } from "@mp/multiprocessing/connection";
 * console.log(loads(dumps([1, "two", null]))); // [1, "two", null]
 * ```
 *
 * @module
 */
export {
  type DumpOptions,
  dumps,
  HIGHEST_PROTOCOL,
  type LoadOptions,
  loads,
  PickleError,
  PyGlobal,
  PyObject,
  PyTuple,
  tuple,
} from "../python/pickle.ts";
export { type Address, Client, type ClientOptions, type Family, Listener, type ListenerOptions } from "./listener.ts";
export { type Authkey } from "./handshake.ts";
export { DEFAULT_MAX_MESSAGE_BYTES, SocketConnection } from "./socket.ts";
export { wait, type Waitable } from "./wait.ts";
// What wait() and poll() take, documented where they live (the package's main entry point).
export type { Connection } from "../connection.ts";
export type { Process } from "../process.ts";
export type { WaitOptions } from "../wait.ts";
