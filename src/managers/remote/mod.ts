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
export { Dict as ManagedDict, List as ManagedList, Namespace as ManagedNamespace, ManagedValue } from "./referents.ts";
export { ManagedEvent, ManagedLock, ManagedQueue } from "./waiting_referents.ts";
