/**
 * Managers: Python's `multiprocessing.Manager`. A server process owns plain
 * objects (a dict, a list, a namespace); other processes reach them through
 * proxies, whose every method is async.
 *
 * The transport is shared memory, as under queues. The manager's block (a
 * {@linkcode SharedMemory} block, which any process of the program can find
 * by name) holds the ring of requests that every caller writes to; each
 * calling process has a block of its own with the ring of its answers. A
 * proxy is therefore only its manager's name and its object's id: it travels
 * in `args`, through a Queue or a Pipe and inside another managed object,
 * and connects from whichever process receives it. (A MessagePort reaches a
 * process only inside a message, so a proxy that arrives as bytes could not
 * connect through one.)
 *
 * Why callers spin: a round trip through two event loops takes 50-75 µs
 * between idle cores on a VM, most of it waking the sleeping thread, while a
 * thread that polls a shared cell sees a write within a microsecond. So the
 * server polls for a moment after each request before it sleeps (`HOT` tells
 * callers it is awake), and a caller polls for its answer while the server
 * is awake: a run of calls never sleeps, and a lone call costs one wake-up,
 * as a message would. A spin pays only while the other side has a core, so
 * each side backs off while its spins come up empty (`polling.ts`: on a busy
 * 2-core VM spinning every time made 1-2k pairs/s, backing off 5-46k).
 * comlink carries the manager's own control requests, from the process
 * that started it (is the server ready, shut down).
 *
 * Lifetimes follow Python's reference counts. The server counts the handles
 * on each object: the proxy that created it, one more each time a proxy is
 * sent (for the receiver), and one per proxy that a result carries back. A
 * proxy that is garbage-collected gives its handle back, and so do all the
 * proxies of a process that ends normally; at zero the object is dropped.
 * Each process tells the server which proxies it received (ADOPT), so the
 * server gives back the handles of a process that was terminated, and lets
 * go of its answer block, which lost its name with the process. A
 * proxy that was sent to the server inside a value keeps its object until
 * the manager shuts down, as the server does not track where it is stored.
 *
 * Locks, queues, events, barriers and shared values already work across
 * processes on shared memory, so the manager hands those out directly: they
 * behave as Python's proxies do, without a round trip per call.
 *
 * The files of src/managers/, in the order a call goes through them:
 * - `wire.ts`: the bytes of requests and answers, a proxy's state, the control port: what both sides import;
 * - `memory.ts`: the manager's block (cells, request ring), each caller's answer block, the polling times;
 * - `polling.ts`: the short spin both sides make before they park, which backs off while it does not pay;
 * - `proxies.ts`: the calls (every proxy method, over `callMethod`) and the `Channel` they go through;
 * - `session.ts`: the caller's side of the ring, the `Channel` of a program's proxies;
 * - `server.ts`: the server's loop, its reference counts, and `managerServer`, the server process's target;
 * - `builtins.ts`, `referents.ts`: what the server keeps (dict, list, Namespace; objects of users' classes);
 * - `base.ts`: `ManagerBase`, what this manager and the socket ones share (server process, registries);
 * - `sync_manager.ts`: `SyncManager` and `Manager()`, which start the server and make objects;
 * - `shared_memory_manager.ts`: `SharedMemoryManager`, which needs no server;
 * - `remote/`: the other manager, CPython's protocol on a socket (`@mp/multiprocessing/managers`).
 *
 * @module
 */
export { ManagerBase, type ManagerContext } from "./managers/base.ts";
export { same } from "./managers/builtins.ts";
export { type AutoProxy, BaseProxy, DictProxy, ListProxy, NamespaceProxy } from "./managers/proxies.ts";
export { managerServer } from "./managers/server.ts";
export { Manager, type RegisterOptions, SyncManager, type SyncManagerOptions } from "./managers/sync_manager.ts";
