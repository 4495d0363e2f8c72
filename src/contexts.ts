/**
 * Contexts, as Python's `multiprocessing.get_context()` returns: the whole API
 * of the library bound to one start method. `ctx.Process` starts with that
 * method, and so do the workers of `ctx.Pool()`; the other factories make the
 * same objects as the top-level classes (a lock or queue does not depend on
 * how processes start), so code written against a context ports unchanged.
 *
 * This module sits above every module it makes objects of: `context.ts` (the
 * start methods) is below them, as `pool.ts` imports it.
 *
 * @module
 */
import { Barrier, type BarrierOptions } from "./barrier.ts";
import { Condition } from "./condition.ts";
import { type Connection, Pipe } from "./connection.ts";
import {
  bindStartMethod,
  checkStartMethod,
  cpuCount,
  getAllStartMethods,
  getStartMethod,
  setStartMethod,
  type StartMethod,
} from "./context.ts";
import { Event } from "./event.ts";
import { getLogger, type LevelName, type Logger, logToStderr } from "./logging.ts";
import { BoundedSemaphore, Lock, RLock, Semaphore, type SemLock } from "./locks.ts";
import { SyncManager } from "./managers.ts";
import { Pool, type PoolOptions } from "./pool.ts";
import { activeChildren, currentProcess, parentProcess, Process } from "./process.ts";
import { JoinableQueue, Queue, SimpleQueue } from "./queues.ts";
import {
  type InputOf,
  type LockOption,
  RawArray,
  RawValue,
  SharedArray,
  type Typecode,
  Value,
} from "./sharedctypes.ts";

/**
 * A context: the library's API bound to a start method, as Python's
 * `get_context()` returns. Factories are called without `new`, as in Python
 * (`ctx.Queue()`); `ctx.Process` is a class.
 */
export interface Context {
  /** The start method of this context. */
  readonly startMethod: StartMethod;
  /** {@linkcode Process}, started with this context's method whatever the default is. */
  readonly Process: typeof Process;
  /** {@linkcode currentProcess} */
  currentProcess(): Process;
  /** {@linkcode parentProcess} */
  parentProcess(): ReturnType<typeof parentProcess>;
  /** {@linkcode activeChildren} */
  activeChildren(): Process[];
  /** {@linkcode cpuCount} */
  cpuCount(): number;
  /** {@linkcode getStartMethod}: this context's method, as Python's `ctx.get_start_method()`. */
  getStartMethod(): StartMethod;
  /** {@linkcode getAllStartMethods} */
  getAllStartMethods(): StartMethod[];
  /** {@linkcode setStartMethod} (the library-wide default, as Python's default context does). */
  setStartMethod(method: string, force?: boolean): void;
  /** {@linkcode getContext} */
  getContext(method?: string): Context;
  /** {@linkcode logToStderr} */
  logToStderr(level?: number | LevelName): Logger;
  /** {@linkcode getLogger} */
  getLogger(): Logger;
  /** A new {@linkcode Queue}. */
  Queue<T = unknown>(maxsize?: number): Queue<T>;
  /** A new {@linkcode JoinableQueue}. */
  JoinableQueue<T = unknown>(maxsize?: number): JoinableQueue<T>;
  /** A new {@linkcode SimpleQueue}. */
  SimpleQueue<T = unknown>(): SimpleQueue<T>;
  /** {@linkcode Pipe} */
  Pipe<T = unknown>(duplex?: boolean): [Connection<T>, Connection<T>];
  /** A new {@linkcode Lock}. */
  Lock(): Lock;
  /** A new {@linkcode RLock}. */
  RLock(): RLock;
  /** A new {@linkcode Semaphore}. */
  Semaphore(value?: number): Semaphore;
  /** A new {@linkcode BoundedSemaphore}. */
  BoundedSemaphore(value?: number): BoundedSemaphore;
  /** A new {@linkcode Condition}. */
  Condition(lock?: SemLock): Condition;
  /** A new {@linkcode Event}. */
  Event(): Event;
  /** A new {@linkcode Barrier}. */
  Barrier(parties: number, options?: BarrierOptions): Barrier;
  /** A new {@linkcode Value}. */
  Value<T extends Typecode>(typecode: T, initial?: InputOf<T>, options?: { lock?: LockOption }): Value<T>;
  /** A new {@linkcode RawValue}. */
  RawValue<T extends Typecode>(typecode: T, initial?: InputOf<T>): RawValue<T>;
  /** A new {@linkcode SharedArray}: Python's `ctx.Array()`. */
  Array<T extends Typecode>(
    typecode: T,
    sizeOrValues: number | Iterable<InputOf<T>>,
    options?: { lock?: LockOption },
  ): SharedArray<T>;
  /** A new {@linkcode SharedArray}, by its name here. */
  SharedArray<T extends Typecode>(
    typecode: T,
    sizeOrValues: number | Iterable<InputOf<T>>,
    options?: { lock?: LockOption },
  ): SharedArray<T>;
  /** A new {@linkcode RawArray}. */
  RawArray<T extends Typecode>(typecode: T, sizeOrValues: number | Iterable<InputOf<T>>): RawArray<T>;
  /** A new {@linkcode Pool} whose workers start with this context's method (unless `options.context` says otherwise). */
  Pool(options?: number | PoolOptions): Pool;
  /** Starts a manager's server with this context's method and resolves to its {@linkcode SyncManager}. */
  Manager(): Promise<SyncManager>;
}

class SpawnProcess extends Process {}
class ForkServerProcess extends Process {}
bindStartMethod(SpawnProcess, "spawn");
bindStartMethod(ForkServerProcess, "forkserver");

function context(startMethod: StartMethod, processClass: typeof Process): Context {
  const ctx: Context = {
    startMethod,
    Process: processClass,
    currentProcess,
    parentProcess,
    activeChildren,
    cpuCount,
    getStartMethod: () => startMethod,
    getAllStartMethods,
    setStartMethod,
    getContext,
    logToStderr,
    getLogger,
    Queue: (maxsize) => new Queue(maxsize),
    JoinableQueue: (maxsize) => new JoinableQueue(maxsize),
    SimpleQueue: () => new SimpleQueue(),
    Pipe: (duplex) => Pipe(duplex),
    Lock: () => new Lock(),
    RLock: () => new RLock(),
    Semaphore: (value) => new Semaphore(value),
    BoundedSemaphore: (value) => new BoundedSemaphore(value),
    Condition: (lock) => new Condition(lock),
    Event: () => new Event(),
    Barrier: (parties, options) => new Barrier(parties, options),
    Value: (typecode, initial, options) => new Value(typecode, initial, options),
    RawValue: (typecode, initial) => new RawValue(typecode, initial),
    Array: (typecode, sizeOrValues, options) => new SharedArray(typecode, sizeOrValues, options),
    SharedArray: (typecode, sizeOrValues, options) => new SharedArray(typecode, sizeOrValues, options),
    RawArray: (typecode, sizeOrValues) => new RawArray(typecode, sizeOrValues),
    Pool(options = {}) {
      const given: PoolOptions = typeof options === "number" ? { processes: options } : options;
      // Anything but an object is Pool's to refuse, with its own message.
      return new Pool(typeof given === "object" && given !== null ? { context: ctx, ...given } : options);
    },
    // As Python's `SyncManager(ctx=self.get_context())`: the server process starts with this context's method.
    Manager: () => new SyncManager({ context: ctx }).start(),
  };
  return ctx;
}

const contexts: Record<StartMethod, Context> = {
  spawn: context("spawn", SpawnProcess),
  forkserver: context("forkserver", ForkServerProcess),
};

/**
 * The context of a start method, or of the one in use when none is named:
 * every factory of the library, with that start method applied to what it
 * starts. Its `Process` starts with that method whatever the default is, and
 * so do the workers of its `Pool()`.
 *
 * @throws {Error} for a method that {@linkcode getAllStartMethods} does not list.
 *
 * @example
 * ```ts
 * import { getContext, type Queue } from "@mp/multiprocessing";
 *
 * export function foo(q: Queue<string>) {
 *   q.putSync("hello");
 * }
 *
 * if (import.meta.main) {
 *   const ctx = getContext("spawn");
 *   const q = ctx.Queue<string>();
 *   const p = new ctx.Process({ target: foo, args: [q] });
 *   p.start();
 *   console.log(await q.get()); // "hello"
 *   await p.join();
 * }
 * ```
 */
export function getContext(method?: string): Context {
  return contexts[method === undefined ? getStartMethod()! : checkStartMethod(method)];
}
