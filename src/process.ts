/**
 * `Process`: Python's `multiprocessing.Process` on a worker thread, and the
 * functions that describe the process tree (`currentProcess`,
 * `parentProcess`, `activeChildren`, `exit`).
 *
 * @module
 */
import { adapter } from "./adapters/mod.ts";
import { startMethodOf } from "./context.ts";
import { becomeProcess, currentProcess as current, dumpingForDelivery, inheritable } from "./lifecycle.ts";
import { children, launch, type ProcessState as State, stop } from "./launch.ts";
import { attachLogging } from "./logging.ts";
import type { Bootstrap, ParentProcess } from "./process_protocol.ts";
import { dump } from "./reduction.ts";
import { callerModule, describeTarget, importingFor, moduleSpecifier } from "./spawn.ts";
import { readWait, type WaitOptions, within } from "./wait.ts";

export type { ParentProcess } from "./process_protocol.ts";

// deno-lint-ignore no-explicit-any
type AnyFunction = (...args: any[]) => unknown;

/** Options of {@linkcode Process}, as the keyword arguments of Python's `Process(...)`. */
export interface ProcessOptions {
  /**
   * What the process runs: a function exported from `module` (by default the
   * module that calls `new Process`), the name of such an export, or a
   * self-contained function, which is then sent as source text.
   */
  // deno-lint-ignore no-explicit-any
  target?: ((...args: any[]) => unknown) | string;
  /** Arguments for `target`; copied by structured clone, except this library's objects, which are shared. */
  args?: readonly unknown[];
  /** The process's name; `Process-N` by default. */
  name?: string;
  /** A daemon does not keep its parent alive and may not start children of its own. */
  daemon?: boolean;
  /** The module that exports `target` (`import.meta.url`, a URL or a specifier). */
  module?: string | URL;
  /**
   * Beyond Python: the most heap the child may use, in MiB. Over it, the child
   * ends with exit code 1 and an out-of-memory report instead of taking the
   * whole program down. Enforced on Node only: Deno's Web Workers have no
   * limit, and Bun ignores it.
   */
  memoryLimit?: number;
}

const states = new WeakMap<Process, State>();

function stateOf(process: Process): State {
  const state = states.get(process);
  if (!state) throw new TypeError("not a Process: was super() called in the subclass constructor?");
  return state;
}

function checkOpen(state: State): void {
  if (state.closed) throw new Error(`process ${state.name} is closed`);
}

/** This thread's own place in the process tree (its process is `current()`). */
const self: { parent: ParentProcess | null; children: number } = { parent: null, children: 0 };

/** The process this thread runs, as a `Process`: `process.ts` is the only one that sets it. */
function ownProcess(): Process {
  return current() as Process;
}

/**
 * A process: a function run in a worker thread of its own, with Python's
 * `Process` API. Blocking calls return Promises.
 *
 * The target is found in the worker by importing its module, as Python's
 * `spawn` re-imports the main module: guard spawning code with
 * `if (import.meta.main)`.
 *
 * @example
 * ```ts
 * import { Process } from "@mp/multiprocessing";
 *
 * export function greet(name: string) {
 *   console.log("hello", name);
 * }
 *
 * if (import.meta.main) {
 *   const p = new Process({ target: greet, args: ["bob"] });
 *   p.start();
 *   await p.join();
 *   console.log(p.exitCode); // 0
 * }
 * ```
 *
 * Subclasses override `run()`, as in Python; the subclass must be exported,
 * and its own fields travel to the worker:
 *
 * ```ts
 * import { Process } from "@mp/multiprocessing";
 *
 * export class Worker extends Process {
 *   job = 42;
 *   override run() {
 *     console.log("working on", this.job);
 *   }
 * }
 * ```
 */
export class Process {
  /**
   * Describes a process; nothing runs until {@linkcode Process.start}.
   *
   * @throws {TypeError} for options that are not an object, args that are not an array, or a target that is neither
   * a function nor a name.
   */
  constructor(options: ProcessOptions = {}) {
    if (typeof options !== "object" || options === null) {
      throw new TypeError("new Process(options): options must be an object such as { target, args }");
    }
    const { target, args = [], name, daemon } = options;
    if (!Array.isArray(args)) throw new TypeError("new Process: args must be an array");
    if (name !== undefined && typeof name !== "string") throw new TypeError("new Process: name must be a string");
    const { memoryLimit } = options;
    if (memoryLimit !== undefined && !(typeof memoryLimit === "number" && memoryLimit > 0 && memoryLimit < Infinity)) {
      throw new RangeError(`memoryLimit must be a number of MiB > 0, got ${String(memoryLimit)}`);
    }
    const module = moduleSpecifier(options.module, callerModule());
    const parent = stateOf(ownProcess());
    const identity = [...parent.identity, ++self.children];
    // The library's own class nearest to the user's: Process, or a context's.
    let own: unknown = new.target;
    while (own !== Process && startMethodOf(own) === undefined) own = Object.getPrototypeOf(own);
    states.set(this, {
      // As Python's: the class's own name, and one counter for every class (`Process-3` then `Sub-4`).
      name: name ?? `${className(new.target, own)}-${identity.join(":")}`,
      daemon: daemon ?? parent.daemon,
      identity,
      target: target === undefined ? undefined : describeTarget(target, module, "new Process"),
      callable: typeof target === "function" ? target : undefined,
      args,
      subclass: own === new.target ? undefined : { module, name: new.target.name },
      memoryLimit,
      startMethod: startMethodOf(own),
      authkey: parent.authkey,
      started: false,
      closed: false,
      exitCode: null,
      loaded: false,
      ended: Promise.withResolvers<void>(),
    });
  }

  /** The process's name: `Process-1`, `Process-1:2` for a child's child, `MainProcess`. */
  get name(): string {
    return stateOf(this).name;
  }
  set name(value: string) {
    if (typeof value !== "string") throw new TypeError("name must be a string");
    stateOf(this).name = value;
  }

  /** Whether this is a daemon; settable only before `start()`. */
  get daemon(): boolean {
    return stateOf(this).daemon;
  }
  set daemon(value: boolean) {
    const state = stateOf(this);
    if (state.started) throw new Error("daemon can only be set before start()");
    state.daemon = Boolean(value);
  }

  /**
   * Python's `authkey`: 32 random bytes in the main process, a copy of its
   * parent's in a child; a remote manager or listener given no key uses the
   * current process's. Settable, to a `Uint8Array` or a string (UTF-8).
   */
  get authkey(): Uint8Array {
    return stateOf(this).authkey;
  }
  set authkey(value: Uint8Array | string) {
    if (typeof value === "string") value = new TextEncoder().encode(value);
    if (!(value instanceof Uint8Array)) throw new TypeError("authkey must be a Uint8Array or a string");
    stateOf(this).authkey = value.slice();
  }

  /** The process id, unique in this program's process tree; `undefined` before `start()`. */
  get pid(): number | undefined {
    return stateOf(this).pid;
  }

  /**
   * `null` while the process runs (or before it starts); 0 when it ended
   * normally; 1 after an uncaught error; n after `exit(n)`; -15 after
   * `terminate()`; -9 after `kill()`.
   */
  get exitCode(): number | null {
    const state = stateOf(this);
    checkOpen(state);
    return state.exitCode;
  }

  /**
   * Starts the process. Arguments are checked here: one that cannot be sent
   * throws a `TypeError` naming it.
   *
   * @throws {Error} when called twice, after `close()`, or in a daemon.
   */
  start(): void {
    const state = stateOf(this);
    checkOpen(state);
    if (this === ownProcess()) throw new Error(`${state.name} is the current process; it cannot be started`);
    if (state.started) throw new Error(`cannot start a process twice (${state.name} was already started)`);
    if (stateOf(ownProcess()).daemon) throw new Error("daemonic processes are not allowed to have children");
    const importing = self.parent ? importingFor() : undefined;
    if (importing !== undefined) {
      // Measured on Bun without this check: 165 children and ~1 GB in 8 s, each child starting the next.
      throw new Error(
        `${state.name} was started while ${ownProcess().name} was still importing ${importing} to find its target: ` +
          "that module starts processes at its top level, so every child would start another. " +
          "Guard the code that starts processes with `if (import.meta.main) { … }`, " +
          "the counterpart of Python's `if __name__ == '__main__':`",
      );
    }
    // Functions in them travel as Python's pickle sends them, looked up first where the target is.
    const module = state.target?.module ?? state.subclass?.module;
    const [[args, fields], waits] = dumpingForDelivery(() => [
      dump(state.args, "args", { functions: true, module }),
      dump({ ...this }, "this", { functions: true, module }),
    ]);
    launch(this, state, { name: ownProcess().name, pid: ownProcess().pid! }, args, fields, waits);
  }

  /**
   * What the process does; by default, calls `target(...args)`. Subclasses
   * override it. `start()` runs it in the child; called directly, as in
   * Python, it runs the target here and now, in the caller, starting nothing.
   *
   * @throws {TypeError} when called directly on a process whose target was given by name.
   */
  run(): unknown {
    const state = stateOf(this);
    const target = state.resolved ?? state.callable;
    if (target) return target(...state.args);
    if (state.target) {
      throw new TypeError(
        `run() called in the caller needs the target function itself; ${state.name}'s target is the name ` +
          `'${state.target.name}': pass the function, or start() the process`,
      );
    }
    return undefined;
  }

  /**
   * Waits until the process ends, or until `timeout` ms pass (then it resolves
   * all the same: check `exitCode` or `isAlive()`).
   *
   * @throws {Error} before `start()` or on the current process.
   * @throws {RangeError} for a NaN or negative timeout.
   */
  async join(timeout?: WaitOptions): Promise<void> {
    const state = stateOf(this);
    checkOpen(state);
    const wait = readWait(timeout, "join");
    if (this === ownProcess()) throw new Error("a process cannot join itself");
    if (!state.started) throw new Error(`can only join a started process (${state.name} was not started)`);
    // A daemon does not hold the program open, but a join on it must.
    state.thread!.keepAlive(true);
    try {
      await within(state.ended.promise, wait);
    } finally {
      if (state.exitCode === null) state.thread!.keepAlive(!state.daemon);
    }
  }

  /** Whether the process has started and not yet ended. */
  isAlive(): boolean {
    const state = stateOf(this);
    checkOpen(state);
    if (this === ownProcess()) return true;
    return state.started && state.exitCode === null;
  }

  /** Stops the process (Python's SIGTERM); its `exitCode` becomes -15. */
  terminate(): void {
    const state = stateOf(this);
    checkOpen(state);
    stop(state, -15);
  }

  /** Stops the process (Python's SIGKILL); its `exitCode` becomes -9. */
  kill(): void {
    const state = stateOf(this);
    checkOpen(state);
    stop(state, -9);
  }

  /**
   * Releases the process object. Most methods throw afterwards.
   *
   * @throws {Error} while the process is still running.
   */
  close(): void {
    const state = stateOf(this);
    if (state.started && state.exitCode === null) {
      throw new Error(`cannot close ${state.name} while it is running: join() or terminate() it first`);
    }
    state.closed = true;
  }

  /** `await using p = new Process(…)`: terminates the process if it still runs, waits for it, closes it. */
  async [Symbol.asyncDispose](): Promise<void> {
    const state = stateOf(this);
    if (state.closed) return;
    if (state.started && state.exitCode === null) {
      this.terminate();
      await state.ended.promise;
    }
    this.close();
  }

  /** Shows the name and state, as Python's repr does. */
  toString(): string {
    const state = stateOf(this);
    const status = this === ownProcess()
      ? "started"
      : !state.started
      ? "initial"
      : state.exitCode === null
      ? "started"
      : `stopped exitcode=${state.exitCode}`;
    const cls = this.constructor;
    const own = cls === Process || startMethodOf(cls) !== undefined ? cls : undefined;
    return `<${className(cls, own)} name='${state.name}' ${status}${state.daemon ? " daemon" : ""}>`;
  }
}

/**
 * Settles when `process` has ended. Unlike `join()` it does not keep the
 * program alive meanwhile, so a supervisor (the Pool) can watch its workers
 * for their whole life without holding an idle program open.
 */
export function whenEnded(process: Process): Promise<void> {
  return stateOf(process).ended.promise;
}

/**
 * A class's name for its processes' default names. The library's own are fixed here: a bundler may rename
 * them (esbuild made `Process` into `_Process`, and so every pool worker `_SpawnPoolWorker-1`).
 */
function className(cls: unknown, own: unknown): string {
  if (cls !== own) return (cls as { name: string }).name;
  if (own === Process) return "Process";
  return startMethodOf(own) === "forkserver" ? "ForkServerProcess" : "SpawnProcess";
}

/** A fresh key, as Python's `os.urandom(32)` for the main process. */
function randomKey(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(32));
}

/** The state of the process this thread runs: started, and already loaded. */
function ownState(name: string, daemon: boolean, pid: number, identity: number[], authkey: Uint8Array): State {
  return {
    name,
    authkey,
    daemon,
    pid,
    identity,
    args: [],
    started: true,
    closed: false,
    exitCode: null,
    loaded: true,
    ended: Promise.withResolvers<void>(),
  };
}

function mainProcess(): Process {
  const main = Object.create(Process.prototype) as Process;
  states.set(main, ownState("MainProcess", false, adapter.pid, [], randomKey()));
  return main;
}

becomeProcess(mainProcess());

/**
 * The `Process` object of the code that calls it: `MainProcess` in the main
 * thread, the child's own process object in a child.
 *
 * @example
 * ```ts
 * import { currentProcess } from "@mp/multiprocessing";
 * console.log(currentProcess().name); // "MainProcess"
 * ```
 */
export function currentProcess(): Process {
  return ownProcess();
}

/**
 * The parent of the current process (its name and pid), or `null` in the
 * main process.
 *
 * @example
 * ```ts
 * import { parentProcess } from "@mp/multiprocessing";
 * console.log(parentProcess()); // null in the main process
 * ```
 */
export function parentProcess(): ParentProcess | null {
  return self.parent;
}

/**
 * The children of the current process that are still running.
 *
 * @example
 * ```ts
 * import { activeChildren } from "@mp/multiprocessing";
 * console.log(activeChildren().length); // 0
 * ```
 */
export function activeChildren(): Process[] {
  return children() as Process[];
}

/**
 * Ends the current process at once with `code`: a child's `exitCode` becomes
 * `code`; in the main thread the program exits.
 *
 * @example
 * ```ts
 * import { exit, Process } from "@mp/multiprocessing";
 *
 * export function fail() {
 *   exit(3);
 * }
 *
 * if (import.meta.main) {
 *   const p = new Process({ target: fail });
 *   p.start();
 *   await p.join();
 *   console.log(p.exitCode); // 3
 * }
 * ```
 */
export function exit(code = 0): never {
  if (!Number.isInteger(code)) throw new TypeError(`exit(code): code must be an integer, got ${String(code)}`);
  return adapter.exit(code);
}

/**
 * In a child (`bootstrap.ts`): takes on the process `boot` describes, before
 * anything is revived, as what is revived may ask which process it is in (a
 * Connection records its holder). The process object itself comes later,
 * from {@linkcode adoptProcess}, once its class is loaded.
 *
 * @example
 * ```ts ignore
 * // bootstrap.ts, on the parent's bootstrap message:
 * adoptIdentity(boot);
 * ```
 */
export function adoptIdentity(boot: Bootstrap): void {
  const provisional = Object.create(Process.prototype) as Process;
  states.set(provisional, ownState(boot.name, boot.daemon, boot.pid, boot.identity, boot.authkey));
  becomeProcess(provisional);
  self.parent = boot.parent;
}

/**
 * In a child: the process object of class `type` with the parent's `fields`,
 * whose `run()` calls `resolved(...args)`, becomes the current process.
 *
 * @example
 * ```ts ignore
 * const process = adoptProcess(Process, {}, [1, 2], (a, b) => console.log(a + b));
 * await process.run(); // 3
 * ```
 */
export function adoptProcess(
  type: abstract new (...args: never[]) => unknown,
  fields: unknown,
  args: unknown[],
  resolved: AnyFunction | undefined,
): Process {
  const state = stateOf(ownProcess());
  const process = Object.assign(Object.create(type.prototype), fields) as Process;
  states.set(process, state);
  state.args = args;
  state.resolved = resolved;
  becomeProcess(process);
  return process;
}

attachLogging(inheritable("@mp/logging", () => new Int32Array(new SharedArrayBuffer(8))), () => current().name);
