/**
 * What every manager is, whatever carries its calls: the base of the
 * in-program `SyncManager` (shared memory, `@mp/multiprocessing`) and of the
 * socket managers (`BaseManager`, `SyncManager` of
 * `@mp/multiprocessing/managers`), as Python's managers all derive from one
 * `BaseManager`. It holds what they do alike: the server process, started
 * with the context's method (Python's `ctx=`) and named after the manager's
 * class; a shutdown that asks the server, then terminates it after a grace;
 * `await using`; and each class's table of registered typeids, copied from
 * its parent's at its first `register`, as Python's `register` copies
 * `_registry`. Nothing here loads a socket: a program that only uses the
 * in-program manager never loads node:net.
 *
 * @module
 */
import { Process } from "../process.ts";

/** What a manager needs of a context (`getContext(method)`): the class whose processes start with its method. */
export interface ManagerContext {
  /** The context's `Process`, which fixes its start method. */
  readonly Process: typeof Process;
}

/** How long a shutdown lets the server end by itself before it is terminated. */
const SHUTDOWN_GRACE_MS = 1_000;

/**
 * The table `cls` registers into: its own, made at its first `register` as a
 * copy of the one it inherits, so that a subclass registers without
 * changing its parent (Python's `register` copies `_registry` so).
 */
export function classTable<E>(tables: WeakMap<object, Map<string, E>>, cls: object): Map<string, E> {
  let table = tables.get(cls);
  if (!table) tables.set(cls, table = new Map(inheritedTable(tables, cls)));
  return table;
}

/** The table `cls` reads: its own, else its nearest ancestor's (a class that never registered reads its parent's). */
export function inheritedTable<E>(tables: WeakMap<object, Map<string, E>>, cls: object): ReadonlyMap<string, E> {
  for (let at: object | null = cls; at && at !== Function.prototype; at = Object.getPrototypeOf(at)) {
    const table = tables.get(at);
    if (table) return table;
  }
  return new Map();
}

/**
 * The base of every manager: the in-program `SyncManager` and the socket
 * `BaseManager` and `SyncManager` of `@mp/multiprocessing/managers`, which
 * are all `instanceof ManagerBase`. A function that takes any manager can
 * take this type: each has `start()`, `shutdown()`, `numberOfObjects()`,
 * `process` and `await using`.
 *
 * @example
 * ```ts
 * import { Manager, type ManagerBase } from "@mp/multiprocessing";
 *
 * async function census(manager: ManagerBase): Promise<number> {
 *   return await manager.numberOfObjects();
 * }
 *
 * await using manager = await Manager();
 * const d = manager.dict();
 * console.log(await census(manager)); // 1
 * ```
 */
export abstract class ManagerBase {
  readonly #processClass: typeof Process;

  /** A manager whose server process will start with `context`'s method (the default start method without one). */
  constructor(context?: ManagerContext) {
    const processClass = context?.Process ?? Process;
    if (processClass !== Process && !(processClass?.prototype instanceof Process)) {
      throw new TypeError(`new ${new.target.name}: options.context must be a context, from getContext()`);
    }
    this.#processClass = processClass;
  }

  /** Starts the server (or connects to it); resolves once it serves. */
  abstract start(): Promise<unknown>;

  /** Stops the server, or lets go of it; a second call does nothing. */
  abstract shutdown(): Promise<void>;

  /** How many objects the server keeps (Python's `_number_of_objects()`). */
  abstract numberOfObjects(): Promise<number>;

  /** The server process that `start()` started (Python's `manager._process`). */
  abstract get process(): Process | undefined;

  /**
   * A daemon process that will run the server `target` (exported from
   * `module`) with `args`, of the context's class, named after the manager's
   * class as Python names it (`SyncManager-3`); not started yet.
   */
  protected serverProcess(target: (...args: never[]) => unknown, module: string, args: unknown[]): Process {
    const process = new this.#processClass({ target, module, args, daemon: true });
    // `SpawnProcess-3` from a context's class: the manager's process is `SyncManager-3` whatever its class.
    process.name = process.name.replace(/^[A-Za-z]*Process/, this.constructor.name);
    return process;
  }

  /** Waits a grace for `process` (asked to stop already) to end, then terminates it. */
  protected async stopServer(process: Process): Promise<void> {
    await process.join(SHUTDOWN_GRACE_MS);
    if (process.isAlive()) {
      process.terminate();
      await process.join();
    }
  }

  /** `await using manager = …` shuts the manager down at the end of the block. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.shutdown();
  }
}
