/**
 * Python's `multiprocessing` for TypeScript: `Process`, queues, pipes, locks,
 * shared memory, pools and managers on Web Workers, the same on Deno, Bun and
 * Node.
 *
 * Python's names become camelCase, blocking calls return Promises (with
 * `…Sync` twins inside workers), and timeouts are milliseconds. A process's
 * target is a function exported from a module; the worker imports that module,
 * so spawning code is guarded with `if (import.meta.main)`, the counterpart of
 * `if __name__ == "__main__":`.
 *
 * @example
 * ```ts
 * import { Process } from "@mp/multiprocessing";
 *
 * export function run(name: string) {
 *   console.log("hello", name);
 * }
 *
 * if (import.meta.main) {
 *   for (let i = 0; i < 10; i++) new Process({ target: run, args: [`bob${i}`] }).start();
 * }
 * ```
 *
 * @module
 */
// Records the URL every worker starts from.
import "./src/bootstrap.ts";
import { managerServer } from "./src/managers.ts";
import { poolWorker } from "./src/pool.ts";
import { registerLibraryTargets } from "./src/spawn.ts";
import { locateLibrary } from "./src/threads.ts";

// A child imports this module, from the URL it has here (this file, its
// JavaScript twin, or an app bundle that contains it), before it revives the
// library's objects it received.
locateLibrary(import.meta.url);
// An app bundle does not export these, yet its children must find them.
registerLibraryTargets(poolWorker, managerServer);

export {
  activeChildren,
  currentProcess,
  exit,
  type ParentProcess,
  parentProcess,
  Process,
  type ProcessOptions,
} from "./src/process.ts";
export { cpuCount, getAllStartMethods, getStartMethod, setStartMethod, type StartMethod } from "./src/context.ts";
export { type Context, getContext } from "./src/contexts.ts";
export {
  CRITICAL,
  DEBUG,
  ERROR,
  getLogger,
  INFO,
  type LevelName,
  Logger,
  type LogHandler,
  type LogRecord,
  logToStderr,
  SUBDEBUG,
  SUBWARNING,
  WARNING,
} from "./src/logging.ts";
export {
  AuthenticationError,
  BrokenBarrierError,
  BrokenPoolError,
  BufferTooShort,
  Empty,
  EOFError,
  Full,
  ProcessError,
  TimeoutError,
} from "./src/errors.ts";
export type { WaitOptions } from "./src/wait.ts";
export {
  AbandonedLockError,
  type AcquireOptions,
  BoundedSemaphore,
  HOLDER_CHECK_MS,
  Lock,
  type LockGuard,
  RLock,
  Semaphore,
  SemLock,
} from "./src/locks.ts";
export { Condition } from "./src/condition.ts";
export { Event } from "./src/event.ts";
export { Barrier, type BarrierOptions } from "./src/barrier.ts";
export {
  type InputOf,
  type ItemOf,
  type LockOption,
  RawArray,
  RawValue,
  SharedArray,
  type Typecode,
  Value,
  type ViewOf,
} from "./src/sharedctypes.ts";
export { SharedMemory, type SharedMemoryOptions } from "./src/shared_memory.ts";
export { type ShareableItem, ShareableList } from "./src/shareable_list.ts";
export { SharedMemoryManager } from "./src/managers/shared_memory_manager.ts";
export {
  type ApplyAsyncOptions,
  AsyncResult,
  type IMapIterator,
  type MapAsyncOptions,
  type MapOptions,
  Pool,
  PoolCalls,
  type PoolOptions,
  type TaskOptions,
} from "./src/pool.ts";
export { Connection, Pipe } from "./src/connection.ts";
export { JoinableQueue, Queue, type QueueWaitOptions, SimpleQueue } from "./src/queues.ts";
export {
  type AutoProxy,
  BaseProxy,
  DictProxy,
  ListProxy,
  Manager,
  ManagerBase,
  type ManagerContext,
  NamespaceProxy,
  type RegisterOptions,
  SyncManager,
  type SyncManagerOptions,
} from "./src/managers.ts";
