/**
 * Remote managers: Python's `BaseManager`/`SyncManager` on a socket, wire
 * compatible with CPython 3.11, so that a server and its clients may be
 * TypeScript or Python programs on any hosts.
 *
 * @example
 * ```ts
 * import { SyncManager } from "@mp/multiprocessing/managers";
 * await using manager = new SyncManager({ address: ["127.0.0.1", 0], authkey: "secret" });
 * await manager.start();
 * const d = manager.dict<string, number>();
 * await d.set("hits", 1);
 * console.log(await d.get("hits")); // 1
 * ```
 *
 * @module
 */
// start() runs a worker process, which starts from the library's main module: it must be loaded.
import "../../../mod.ts";
import { registerLibraryTargets } from "../../spawn.ts";
import { serveManager } from "./manager.ts";

// An app bundle does not export it, yet the server process must find it.
registerLibraryTargets(serveManager);

export { BaseManager, type ManagerOptions } from "./manager.ts";
export { ManagerBase, type ManagerContext } from "../base.ts";
export { SyncManager } from "./sync_manager.ts";
// A server is made by getServer() (or start()); its constructor takes internal types.
export type { Server } from "./server.ts";
export { type Address, PythonException, RemoteError, Token } from "./protocol.ts";
export type { Maker, RegisterOptions } from "./registry.ts";
export {
  type RemoteAutoProxy,
  RemoteDictProxy,
  RemoteEventProxy,
  RemoteListProxy,
  RemoteNamespaceProxy,
  RemoteProxy,
  RemoteQueueProxy,
  RemoteValueProxy,
} from "./proxies.ts";
export { RemoteConditionProxy, RemoteLockProxy } from "./lock_proxies.ts";
export { RemoteArrayProxy, RemoteBarrierProxy } from "./sync_proxies.ts";
export { RemoteAsyncResult, RemotePoolProxy, type RemoteTask } from "./pool_proxies.ts";
// A Python function by module and name, for a Python server's Pool (the same class as `./connection`'s).
export { PyGlobal } from "../../python/pickle.ts";
// The server's own classes take the served call in every Python method: a program sees them through served.ts.
export {
  type LockKind,
  ManagedDict,
  ManagedEvent,
  ManagedList,
  ManagedLock,
  ManagedNamespace,
  ManagedQueue,
  ManagedValue,
} from "./served.ts";
// What the proxies extend and take, and manager.process: documented in the package's main entry point.
export type { AutoProxy, BaseProxy, DictProxy, ListProxy, NamespaceProxy } from "../../managers.ts";
export type { AcquireOptions } from "../../locks.ts";
export type { QueueWaitOptions } from "../../queues.ts";
export type { Process } from "../../process.ts";
export type { WaitOptions } from "../../wait.ts";
