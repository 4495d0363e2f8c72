/**
 * A process's life as the layers below `Process` see it: which process this
 * thread runs (its name and pid), the state every child inherits at start,
 * the work a child waits for before its target runs and finishes before it
 * exits, and the report an uncaught error leaves. Queues, pipes, locks and
 * shared memory register here, so they need nothing of `process.ts`, which
 * sits above them and fills these in.
 *
 * @module
 */
import { adapter } from "./adapters/mod.ts";

/** The process this thread runs, as seen from below `Process`: the same object `currentProcess()` returns. */
export interface ProcessIdentity {
  /** `MainProcess`, `Process-1`, … */
  readonly name: string;
  /** The pid in this program's process tree. */
  readonly pid: number | undefined;
}

let current: ProcessIdentity = { name: "MainProcess", pid: adapter.pid };

/**
 * The process this thread runs: the `Process` object itself once
 * `process.ts` has set it, read here for its name and pid.
 *
 * @example
 * ```ts
 * import { currentProcess } from "./lifecycle.ts";
 * console.log(currentProcess().name); // "MainProcess"
 * ```
 */
export function currentProcess(): ProcessIdentity {
  return current;
}

/**
 * Makes `process` the one this thread runs (`process.ts` does, in the main
 * thread and in a child's bootstrap).
 *
 * @example
 * ```ts
 * import { becomeProcess, currentProcess } from "./lifecycle.ts";
 * becomeProcess({ name: "MainProcess", pid: currentProcess().pid });
 * ```
 */
export function becomeProcess(process: ProcessIdentity): void {
  current = process;
}

interface Inherited {
  get(): unknown;
  set(value: unknown): void;
}

const inherited = new Map<string, Inherited>();

/** Values a child received for keys whose module it had not loaded yet: they are taken when it registers. */
const received = new Map<string, unknown>();

/**
 * State that the whole process tree shares, such as a SharedArrayBuffer: the
 * main process creates it (on first use, or when it starts its first child),
 * and every child receives the same value at start. A child that loads the
 * module only later (its target imports it) takes the value it received then.
 *
 * @example
 * ```ts
 * import { inheritable } from "./lifecycle.ts";
 * const counter = inheritable("@example/counter", () => new Int32Array(new SharedArrayBuffer(4)));
 * Atomics.add(counter(), 0, 1); // the same cell in every process of the tree
 * ```
 */
export function inheritable<T>(key: string, create: () => T): () => T {
  let known = received.has(key);
  let value = received.get(key) as T | undefined;
  received.delete(key);
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

/**
 * What a child inherits, by key: created now where not yet.
 *
 * @example
 * ```ts
 * import { inheritedState } from "./lifecycle.ts";
 * console.log(typeof inheritedState()); // "object"
 * ```
 */
export function inheritedState(): Record<string, unknown> {
  return Object.fromEntries([...inherited].map(([key, entry]) => [key, entry.get()]));
}

/**
 * In a child: takes what its parent passed on as its own.
 *
 * @example
 * ```ts
 * import { adoptInherited, inheritedState } from "./lifecycle.ts";
 * adoptInherited(inheritedState());
 * ```
 */
export function adoptInherited(state: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(state)) {
    const entry = inherited.get(key);
    if (entry) entry.set(value);
    else received.set(key, value);
  }
}

/** Work that the delivery being dumped (a child's bootstrap, a queue item, a pipe message) waits for; `undefined`: no such dump. */
let deliveryWaits: Promise<unknown>[] | undefined;

/**
 * Dumps a child's arguments (or an item for a queue or pipe) with `dump`, and
 * gives what it returned with the work that their dumping registered
 * ({@linkcode beforeDelivery}), which the child's bootstrap (or the item's
 * publishing) waits for.
 *
 * @example
 * ```ts
 * import { dumpingForDelivery } from "./lifecycle.ts";
 * const [args, waits] = dumpingForDelivery(() => JSON.stringify([1, 2]));
 * console.log(args, waits.length); // [1,2] 0
 * ```
 */
export function dumpingForDelivery<T>(dump: () => T): [T, Promise<unknown>[]] {
  const outer = deliveryWaits;
  const waits: Promise<unknown>[] = (deliveryWaits = []);
  try {
    return [dump(), waits];
  } finally {
    deliveryWaits = outer;
  }
}

/**
 * While a child's arguments, or an item put on a queue or sent on a pipe,
 * are dumped: work that must be done before the receiver can act on them,
 * such as a manager's count of a proxy sent to it, which must reach the
 * server before the receiver's own requests about it. The parent posts the
 * child's bootstrap once the work has settled; the queue or pipe publishes
 * the item once it has succeeded. Elsewhere it does nothing.
 *
 * @example
 * ```ts
 * import { beforeDelivery } from "./lifecycle.ts";
 * beforeDelivery(Promise.resolve());
 * ```
 */
export function beforeDelivery(work: Promise<unknown>): void {
  deliveryWaits?.push(work);
}

const preparing: Promise<unknown>[] = [];

/**
 * For a revived object that needs async work (such as importing a module)
 * before its synchronous methods can be used: a child runs its target only
 * once every such piece of work has settled.
 *
 * @example
 * ```ts
 * import { prepareBeforeRun } from "./lifecycle.ts";
 * prepareBeforeRun(import("./errors.ts"));
 * ```
 */
export function prepareBeforeRun(work: Promise<unknown>): void {
  preparing.push(work);
}

/**
 * Settles once the work registered with {@linkcode prepareBeforeRun} so far has.
 *
 * @example
 * ```ts
 * import { prepared } from "./lifecycle.ts";
 * await prepared();
 * ```
 */
export async function prepared(): Promise<void> {
  await Promise.allSettled(preparing.splice(0));
}

const exitTasks = new Set<() => unknown>();

/**
 * Registers work that a child finishes before it ends normally (not when it
 * is terminated or calls `exit`), as Python's `multiprocessing` joins queue
 * feeder threads and closes connections at exit. Returns the unregistration.
 *
 * @example
 * ```ts
 * import { beforeChildExit } from "./lifecycle.ts";
 * const unregister = beforeChildExit(() => console.log("flushed"));
 * unregister();
 * ```
 */
export function beforeChildExit(task: () => unknown): () => void {
  exitTasks.add(task);
  return () => exitTasks.delete(task);
}

interface EachChild {
  give(pid: number, daemon: boolean): MessagePort;
  take(port: MessagePort): void;
}

let eachChild: EachChild | undefined;
/** This process's own port, when it came before any module asked for it (a child loads little at first). */
let portBeforeTaker: MessagePort | undefined;

/**
 * A fresh MessagePort for each child: `give` makes it when the child starts
 * (with the child's pid), and the child hands it to `take` before its args
 * are revived, or when `take` is registered, for a child that loads the
 * module registering it later. For `resource_sharer.ts`, whose main process
 * must reach every process directly.
 *
 * @example
 * ```ts
 * import { portForEachChild } from "./lifecycle.ts";
 * portForEachChild((_pid) => new MessageChannel().port2, (port) => port.close());
 * ```
 */
export function portForEachChild(
  give: (pid: number, daemon: boolean) => MessagePort,
  take: (port: MessagePort) => void,
): void {
  eachChild = { give, take };
  if (portBeforeTaker) take(portBeforeTaker);
  portBeforeTaker = undefined;
}

/**
 * In the parent: the port for the child with this pid (a daemon or not), when a module asked for one.
 *
 * @example
 * ```ts
 * import { portForChild } from "./lifecycle.ts";
 * console.log(portForChild(2, false)); // undefined, unless resource_sharer.ts is loaded
 * ```
 */
export function portForChild(pid: number, daemon: boolean): MessagePort | undefined {
  return eachChild?.give(pid, daemon);
}

/**
 * In a child: its own port, from the bootstrap.
 *
 * @example
 * ```ts ignore
 * if (boot.port) adoptOwnPort(boot.port);
 * ```
 */
export function adoptOwnPort(port: MessagePort): void {
  if (eachChild) eachChild.take(port);
  else portBeforeTaker = port;
}

/**
 * Runs every task registered with {@linkcode beforeChildExit}, together.
 *
 * @example
 * ```ts
 * import { runExitTasks } from "./lifecycle.ts";
 * await runExitTasks();
 * ```
 */
export async function runExitTasks(): Promise<void> {
  await Promise.all([...exitTasks].map((task) => task()));
}

/**
 * Leaves the report of an error nobody caught in process `name` on standard
 * error, as Python's traceback: `Process Process-1:` then the stack, and its causes.
 *
 * @example
 * ```ts
 * import { reportUncaught } from "./lifecycle.ts";
 * reportUncaught("Process-1", new Error("boom"));
 * ```
 */
export function reportUncaught(name: string, error: unknown): void {
  adapter.writeError(`Process ${name}:\n${describeError(error)}\n`);
}

function describeError(error: unknown): string {
  if (!(error instanceof Error)) return `Error: ${String(error)}`;
  const head = `${error.name}: ${error.message}`;
  const stack = error.stack ?? head;
  const text = stack.includes(error.message) ? stack : `${head}\n${stack}`;
  return error.cause === undefined ? text : `${text}\nCaused by: ${describeError(error.cause)}`;
}
