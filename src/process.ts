/**
 * `Process`: Python's `multiprocessing.Process` on a worker thread, and the
 * functions that describe the process tree (`currentProcess`,
 * `parentProcess`, `activeChildren`, `exit`).
 *
 * @module
 */
import { adapter, childFlag, type SpawnOptions, type ThreadHandle } from "./adapters/mod.ts";
import type { StartMethod } from "./context.ts";
import { adoptFence, commitInFlight, newFence, raiseFence } from "./fence.ts";
import { dump, type Dumped, load } from "./reduction.ts";
import {
  callerModule,
  describeTarget,
  moduleSpecifier,
  resolveClass,
  resolveTarget,
  type TargetSpec,
} from "./spawn.ts";
import { readWait, type WaitOptions, within } from "./wait.ts";

/**
 * The module that holds the whole library, as `mod.ts` records it: `mod.ts`
 * itself, the JavaScript twin JSR serves to Node and Bun, or the one file of
 * an app bundle. A child imports it (and then its target's module, which
 * imports the same URL), so a child holds exactly one copy of the library.
 */
let library: string | undefined;
let entry: URL | undefined;

/** Called by `mod.ts` with its own URL. */
export function locateLibrary(url: string): void {
  library ??= url;
}


/**
 * Every worker starts from a two-statement data: module rather than a file of
 * ours: no file has to survive bundling or transpiling, and a bundled app's
 * child loads that same bundle. Not awaited, so the entry is no async module
 * (see {@linkcode stop}).
 */
function workerEntry(): URL {
  if (!library) throw new Error("the library was not loaded through its main module (mod.ts)");
  entry ??= new URL(
    `data:text/javascript,${
      encodeURIComponent(
        `globalThis[Symbol.for(${JSON.stringify(childFlag.description)})] = true; import(${JSON.stringify(library)});`,
      )
    }`,
  );
  return entry;
}

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

/** The parent of the current process, as {@linkcode parentProcess} returns it. */
export interface ParentProcess {
  /** The parent's name, `MainProcess` for the main thread. */
  readonly name: string;
  /** The parent's pid. */
  readonly pid: number;
}

interface State {
  name: string;
  daemon: boolean;
  pid?: number;
  identity: number[];
  target?: TargetSpec;
  args: readonly unknown[];
  subclass?: TargetSpec;
  /** In the child: the resolved target that `run()` calls. */
  resolved?: AnyFunction;
  thread?: ThreadHandle;
  started: boolean;
  closed: boolean;
  exitCode: number | null;
  memoryLimit?: number;
  /** -15 after terminate(), -9 after kill(): wins over the thread's own code. */
  signalled?: number;
  /** The child has imported its target's module (see {@linkcode stop}). */
  loaded: boolean;
  ended: PromiseWithResolvers<void>;
  /** In the parent: the child's fence (see `fence.ts`), raised before its end is reported. */
  fence?: Int32Array;
  /** Fixed by a context's `Process` class; otherwise the default at `start()`, as Python's. */
  startMethod?: StartMethod;
}

interface PidSource {
  cell: Int32Array;
  base: number;
  /** One bit per pid slot, set once that process has ended: lets any process tell that a lock's holder is gone. */
  ended: Int32Array;
}

/** Pid slots in the `ended` bitmap (128 KiB); pids wrap around it, and a slot is cleared when its pid is handed out. */
const PID_SLOTS = 1 << 20;

/** What a child is told when it starts, after it has said hello. */
interface Bootstrap {
  t: "start";
  name: string;
  pid: number;
  daemon: boolean;
  identity: number[];
  parent: ParentProcess;
  pids: PidSource;
  /** The fence the parent raises before it reports this process ended. */
  fence: SharedArrayBuffer;
  target?: TargetSpec;
  subclass?: TargetSpec;
  args: Omit<Dumped, "transfer">;
  fields: Omit<Dumped, "transfer">;
  inherited: Record<string, unknown>;
  environment?: Record<string, string>;
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

/** This thread's own place in the process tree. */
const self: {
  process: Process;
  parent: ParentProcess | null;
  pids: PidSource;
  children: number;
} = {
  process: undefined as unknown as Process,
  parent: null,
  pids: {
    cell: new Int32Array(new SharedArrayBuffer(4)),
    base: adapter.pid,
    ended: new Int32Array(new SharedArrayBuffer(PID_SLOTS / 8)),
  },
  children: 0,
};

/** This thread's pid, for the hot paths that record a holder (a ring's locks). */
let pidOfThread = adapter.pid;

/**
 * The pid of the process this thread runs, as `currentProcess().pid`, without
 * looking the process object up.
 */
export function ownPid(): number {
  return pidOfThread;
}

/** Started children of this process that have not been seen to end. */
const running = new Set<Process>();

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
    const identity = [...(self.process ? stateOf(self.process).identity : []), ++self.children];
    // The library's own class nearest to the user's: Process, or a context's.
    let own: unknown = new.target;
    while (own !== Process && !contextClasses.has(own)) own = Object.getPrototypeOf(own);
    states.set(this, {
      name: name ?? `Process-${identity.join(":")}`,
      daemon: daemon ?? (self.process ? stateOf(self.process).daemon : false),
      identity,
      target: target === undefined ? undefined : describeTarget(target, module, "new Process"),
      args,
      subclass: own === new.target ? undefined : { module, name: new.target.name },
      memoryLimit,
      startMethod: contextClasses.get(own),
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
    if (this === self.process) throw new Error(`${state.name} is the current process; it cannot be started`);
    if (state.started) throw new Error(`cannot start a process twice (${state.name} was already started)`);
    if (stateOf(self.process).daemon) throw new Error("daemonic processes are not allowed to have children");
    const args = dump(state.args, "args");
    const fields = dump({ ...this }, "this");
    state.pid = self.pids.base + Atomics.add(self.pids.cell, 0, 1) + 1;
    markEnded(state.pid, false);
    state.started = true;
    const fence = (state.fence = newFence());
    const boot: Bootstrap = {
      t: "start",
      name: state.name,
      pid: state.pid,
      daemon: state.daemon,
      identity: state.identity,
      parent: { name: self.process.name, pid: self.process.pid! },
      pids: self.pids,
      fence: fence.buffer as SharedArrayBuffer,
      target: state.target,
      subclass: state.subclass,
      args: { data: args.data, reduced: args.reduced },
      fields: { data: fields.data, reduced: fields.reduced },
      inherited: Object.fromEntries([...inherited].map(([key, entry]) => [key, entry.get()])),
      environment: adapter.environment?.(),
    };
    // Spawned all the same: a process with resource limits, which can only be set when a worker is created;
    // and one whose code is in the library's own file (an app bundle), since a spare that loads that file runs
    // the app's top-level code ahead of its process.
    const warm = (state.startMethod ?? defaultStartMethod) === "forkserver" && state.memoryLimit === undefined &&
      state.target?.module !== library && state.subclass?.module !== library;
    const thread = startThread(warm, {
      name: state.name,
      memoryLimit: state.memoryLimit,
      detached: state.daemon,
      onMessage: (data) => {
        const kind = (data as { t?: string }).t;
        if (kind === "running") {
          state.loaded = true;
          if (state.signalled !== undefined) thread.terminate();
        }
        if (kind !== "hello") return;
        try {
          thread.post(boot, [...args.transfer, ...fields.transfer]);
        } catch (error) {
          report(state.name, error);
          state.signalled = 1;
          thread.terminate();
        }
      },
      onEnd: ({ code, error, mayRun }) => {
        // Fenced before anyone may take over what it held (ended bit), and before anyone hears of the end.
        raiseFence(fence);
        const ended = () => {
          markEnded(state.pid!, true);
          state.exitCode = state.signalled ?? code;
          if (error !== undefined && state.signalled === undefined) report(state.name, error);
          running.delete(this);
          state.ended.resolve();
        };
        if (mayRun && commitInFlight(fence)) void commitEnded(fence).then(ended);
        else ended();
      },
    });
    thread.keepAlive(!state.daemon);
    state.thread = thread;
    running.add(this);
  }

  /**
   * What the process does; by default, calls `target(...args)`. Subclasses
   * override it. Runs in the child.
   */
  run(): unknown {
    const state = stateOf(this);
    return state.resolved?.(...state.args);
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
    if (this === self.process) throw new Error("a process cannot join itself");
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
    if (this === self.process) return true;
    return state.started && state.exitCode === null;
  }

  /** Stops the process (Python's SIGTERM); its `exitCode` becomes -15. */
  terminate(): void {
    stop(this, -15);
  }

  /** Stops the process (Python's SIGKILL); its `exitCode` becomes -9. */
  kill(): void {
    stop(this, -9);
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
    const status = this === self.process
      ? "started"
      : !state.started
      ? "initial"
      : state.exitCode === null
      ? "started"
      : `stopped exitcode=${state.exitCode}`;
    return `<${this.constructor.name} name='${state.name}' ${status}${state.daemon ? " daemon" : ""}>`;
  }
}

/**
 * Resolves once the commit of a fenced child that was in flight is over: a
 * commit is a few stores, so a poll on the next turns is enough.
 */
async function commitEnded(fence: Int32Array): Promise<void> {
  while (commitInFlight(fence)) await new Promise((resolve) => setTimeout(resolve, 1));
}

/**
 * Settles when `process` has ended. Unlike `join()` it does not keep the
 * program alive meanwhile, so a supervisor (the Pool) can watch its workers
 * for their whole life without holding an idle program open.
 */
export function whenEnded(process: Process): Promise<void> {
  return stateOf(process).ended.promise;
}

function markEnded(pid: number, ended: boolean): void {
  const slot = (pid - self.pids.base) & (PID_SLOTS - 1);
  const bit = 1 << (slot & 31);
  if (ended) Atomics.or(self.pids.ended, slot >> 5, bit);
  else Atomics.and(self.pids.ended, slot >> 5, ~bit);
}

/**
 * Whether the process with this pid, started anywhere in this program's
 * process tree, has ended. Its parent records the end as soon as it sees it.
 */
export function hasEnded(pid: number): boolean {
  const slot = (pid - self.pids.base) & (PID_SLOTS - 1);
  return pid !== self.pids.base && (Atomics.load(self.pids.ended, slot >> 5) & (1 << (slot & 31))) !== 0;
}

const preparing: Promise<unknown>[] = [];

/**
 * For a revived object that needs async work (such as importing a module)
 * before its synchronous methods can be used: a child runs its target only
 * once every such piece of work has settled.
 */
export function prepareBeforeRun(work: Promise<unknown>): void {
  preparing.push(work);
}

interface Inherited {
  get(): unknown;
  set(value: unknown): void;
}

const inherited = new Map<string, Inherited>();

/**
 * State that the whole process tree shares, such as a SharedArrayBuffer: the
 * main process creates it (on first use, or when it starts its first child),
 * and every child receives the same value at start, before its target runs.
 * Call it at the top level of a module that `mod.ts` loads, so that every
 * worker registers `key` before its bootstrap arrives.
 */
export function inheritable<T>(key: string, create: () => T): () => T {
  let known = false;
  let value: T | undefined;
  const entry: Inherited = {
    get() {
      if (!known) (value = create(), known = true);
      return value;
    },
    set(given) {
      value = given as T;
      known = true;
    },
  };
  inherited.set(key, entry);
  return entry.get as () => T;
}

/** The start method of a process whose class does not fix one: set by `setStartMethod()`. */
let defaultStartMethod: StartMethod = "spawn";

/** The classes of contexts (`getContext(method).Process`), each with the start method it fixes. */
const contextClasses = new Map<unknown, StartMethod>();

/** Called by `context.ts` with each context's `Process` class. */
export function bindStartMethod(processClass: typeof Process, method: StartMethod): void {
  contextClasses.set(processClass, method);
}

/** Called by `setStartMethod()`. Back on "spawn", the spare is no longer wanted. */
export function setDefaultStartMethod(method: StartMethod): void {
  defaultStartMethod = method;
  if (method === "spawn") retireSpare();
}

/**
 * A worker started ahead of need, as Python's forkserver: it loads the
 * library and says hello, then waits for a bootstrap. Until a process takes
 * it, it is unref'd: it never holds the program open (hence no "forkserver"
 * where a worker cannot be unref'd).
 */
interface Spare {
  thread: ThreadHandle;
  /** The worker said hello before a process took it. */
  hello: boolean;
  /** The process that took it. */
  owner?: SpawnOptions;
}

let spare: Spare | undefined;

function startSpare(): Spare {
  const started: Spare = {
    hello: false,
    thread: adapter.spawn(workerEntry(), {
      name: "forkserver",
      onMessage: (data) => started.owner ? started.owner.onMessage(data) : (started.hello = true),
      onEnd: (end) => {
        if (started.owner) started.owner.onEnd(end);
        else if (spare === started) spare = undefined;
      },
    }),
  };
  started.thread.keepAlive(false);
  return started;
}

function retireSpare(): void {
  spare?.thread.terminate();
  spare = undefined;
}

/**
 * The thread a process starts on: a new one, or with `warm` the spare, even
 * one that is still loading (it is ahead of a new one all the same), and
 * then a spare for the next start.
 */
function startThread(warm: boolean, options: SpawnOptions): ThreadHandle {
  if (!warm) return adapter.spawn(workerEntry(), options);
  const taken = spare ?? startSpare();
  spare = startSpare();
  taken.owner = options;
  // Later, as a message would come: the caller has no handle on the thread yet.
  if (taken.hello) queueMicrotask(() => options.onMessage({ t: "hello" }));
  return taken.thread;
}

/** How long a stop waits for a child that is still importing its target's module. */
const LOADING_GRACE_MS = 1_000;

/**
 * Stops a child's thread. Node 24 aborts the whole program when a worker is
 * terminated while it evaluates a module with a top-level await
 * (nodejs/node#60755), and most target modules have one, so a child that is
 * still importing is stopped once it says it is running, or after a grace.
 */
function stop(process: Process, signal: number): void {
  const state = stateOf(process);
  checkOpen(state);
  if (!state.thread || state.exitCode !== null || state.signalled !== undefined) return;
  state.signalled = signal;
  if (state.loaded) return state.thread.terminate();
  const grace = setTimeout(() => state.thread!.terminate(), LOADING_GRACE_MS);
  void state.ended.promise.then(() => clearTimeout(grace));
}

/** The state of the process this thread runs: started, and already loaded. */
function ownState(name: string, daemon: boolean, pid: number, identity: number[]): State {
  return {
    name,
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
  states.set(main, ownState("MainProcess", false, adapter.pid, []));
  return main;
}

self.process = mainProcess();

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
  return self.process;
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
  return [...running];
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

/** The report an uncaught error in a child leaves on standard error, as Python's traceback. */
function report(name: string, error: unknown): void {
  adapter.writeError(`Process ${name}:\n${describeError(error)}\n`);
}

function describeError(error: unknown): string {
  if (!(error instanceof Error)) return `Error: ${String(error)}`;
  const head = `${error.name}: ${error.message}`;
  const stack = error.stack ?? head;
  const text = stack.includes(error.message) ? stack : `${head}\n${stack}`;
  return error.cause === undefined ? text : `${text}\nCaused by: ${describeError(error.cause)}`;
}

function isBootstrap(data: unknown): data is Bootstrap {
  return (data as Partial<Bootstrap> | null)?.t === "start";
}

/**
 * In a worker thread: waits for the parent's bootstrap, becomes the process
 * it describes, runs it and ends the thread with its exit code.
 */
function serveChild(): void {
  const port = adapter.parent();
  if (!port) throw new Error("the worker entry was loaded on the main thread");
  port.onMessage((data) => {
    if (isBootstrap(data)) void runChild(data);
  });
  port.post({ t: "hello" });
}

async function runChild(boot: Bootstrap): Promise<never> {
  const state = ownState(boot.name, boot.daemon, boot.pid, boot.identity);
  // What is revived from the bootstrap may ask which process it is in (a Connection records its holder):
  // answer already, before the process object itself is revived.
  const provisional = Object.create(Process.prototype) as Process;
  states.set(provisional, state);
  self.process = provisional;
  self.parent = boot.parent;
  self.pids = boot.pids;
  pidOfThread = boot.pid;
  adoptFence(boot.fence);
  for (const [key, value] of Object.entries(boot.inherited)) inherited.get(key)?.set(value);
  if (boot.environment) adapter.setEnvironment?.(boot.environment);
  adapter.onUncaught((error) => {
    report(state.name, error);
    adapter.exit(1);
  });
  let code = 0;
  try {
    state.args = load(boot.args.data, boot.args.reduced) as unknown[];
    const type = boot.subclass ? await resolveClass(boot.subclass) : Process;
    const process = Object.assign(Object.create(type.prototype), load(boot.fields.data, boot.fields.reduced));
    states.set(process, state);
    self.process = process;
    if (boot.target) state.resolved = await resolveTarget(boot.target);
    await Promise.allSettled(preparing.splice(0));
    adapter.parent()!.post({ t: "running" });
    await process.run();
  } catch (error) {
    report(state.name, error);
    code = 1;
  }
  // As Python's exit handler: daemonic children are stopped, the others awaited, then the finalizers run.
  for (const child of running) if (child.daemon) child.terminate();
  await Promise.all([...running].map((child) => stateOf(child).ended.promise));
  await Promise.all([...exitTasks].map((task) => task()));
  return adapter.exit(code);
}

const exitTasks = new Set<() => unknown>();

/**
 * Registers work that a child finishes before it ends normally (not when it
 * is terminated or calls `exit`), as Python's `multiprocessing` joins queue
 * feeder threads and closes connections at exit. Returns the unregistration.
 */
export function beforeChildExit(task: () => unknown): () => void {
  exitTasks.add(task);
  return () => exitTasks.delete(task);
}

// In a worker started from workerEntry(): serve the parent's bootstrap. The
// bootstrap arrives in a later task, after every module of the library has
// registered its kinds.
if ((globalThis as Record<symbol, unknown>)[childFlag]) {
  delete (globalThis as Record<symbol, unknown>)[childFlag];
  serveChild();
}
