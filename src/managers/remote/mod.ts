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

export { BaseManager, type ManagerOptions, serveManager } from "./manager.ts";
export { SyncManager } from "./sync_manager.ts";
export { Server } from "./server.ts";
export { type Address, PythonException, RemoteError, Token } from "./protocol.ts";
export type { Maker, RegisterOptions } from "./registry.ts";
export {
  type RemoteAutoProxy,
  RemoteDictProxy,
  RemoteEventProxy,
  RemoteListProxy,
  RemoteLockProxy,
  RemoteNamespaceProxy,
  RemoteProxy,
  RemoteQueueProxy,
  RemoteValueProxy,
} from "./proxies.ts";
export {
  Dict as ManagedDict,
  List as ManagedList,
  ManagedArray,
  ManagedValue,
  Namespace as ManagedNamespace,
} from "./referents.ts";
export { ManagedBarrier, ManagedCondition, ManagedEvent, ManagedLock, ManagedQueue } from "./waiting_referents.ts";
