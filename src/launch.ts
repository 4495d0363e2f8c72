/**
 * The parent's side of a child's life: its pid and thread, the handshake
 * that sends it its bootstrap (`process_protocol.ts`), how it is stopped, and
 * how its end is recorded. `Process` (`process.ts`) is the API over it.
 *
 * @module
 */
import { adapter, type ThreadHandle } from "./adapters/mod.ts";
import { defaultStartMethod, type StartMethod } from "./context.ts";
import { commitInFlight, newFence, raiseFence } from "./fence.ts";
import { inheritedState, portForChild, reportUncaught as report } from "./lifecycle.ts";
import { markEnded, newPid, pidTable } from "./pids.ts";
import { beginCell, type Bootstrap, cancelStart, type ChildMessage, type ParentProcess } from "./process_protocol.ts";
import type { Dumped } from "./reduction.ts";
import type { TargetSpec } from "./spawn.ts";
import { libraryModule, startThread } from "./threads.ts";

// deno-lint-ignore no-explicit-any
type AnyFunction = (...args: any[]) => unknown;

/** Everything known of one process, in its creator and, for its own process, in the child. */
export interface ProcessState {
  name: string;
  daemon: boolean;
  pid?: number;
  identity: number[];
  target?: TargetSpec;
  args: readonly unknown[];
  subclass?: TargetSpec;
  /** In the child: the resolved target that `run()` calls. */
  resolved?: AnyFunction;
  /** In the creator: the target function itself, for a `run()` called there (Python runs it in the caller). */
  callable?: AnyFunction;
  thread?: ThreadHandle;
  started: boolean;
  closed: boolean;
  exitCode: number | null;
  memoryLimit?: number;
  /** -15 after terminate(), -9 after kill(): wins over the thread's own code. */
  signalled?: number;
  /** The child has imported its target's module (see {@linkcode stop}). */
  loaded: boolean;
  /** The child's `begun` cell (`process_protocol.ts`): whether it may be importing its target's module. */
  begun?: SharedArrayBuffer;
  /**
   * Before it claims its start the child has loaded only the bootstrap, which has no top-level await, so it can
   * be stopped at once; not so in an app bundle, where the bootstrap's file is the app's (see {@linkcode stop}).
   */
  stopsEarly?: boolean;
  ended: PromiseWithResolvers<void>;
  /** In the parent: the child's fence (see `fence.ts`), raised before its end is reported. */
  fence?: Int32Array;
  /** Fixed by a context's `Process` class; otherwise the default at `start()`, as Python's. */
  startMethod?: StartMethod;
  /** Python's `authkey`: the key managers and listeners use when given none; a child starts with its parent's. */
  authkey: Uint8Array;
}

/** Started children of this process that have not been seen to end, with their `Process` objects. */
const running = new Map<ProcessState, object>();

/**
 * The `Process` objects of the children that have not been seen to end.
 *
 * @example
 * ```ts
 * import { children } from "./launch.ts";
 * console.log(children().length); // 0 before any start
 * ```
 */
export function children(): object[] {
  return [...running.values()];
}

/**
 * Starts the child `state` describes, for `process`, with its dumped `args`
 * and `fields`, whose bootstrap waits for the work their dumping registered,
 * `waits` (the checks are the caller's: `Process.start()`).
 *
 * @example
 * ```ts ignore
 * // In Process.start(), once the arguments are dumped:
 * launch(this, state, { name: "MainProcess", pid }, dump(state.args, "args"), dump({ ...this }, "this"), []);
 * ```
 */
export function launch(
  process: object,
  state: ProcessState,
  parent: ParentProcess,
  args: Dumped,
  fields: Dumped,
  waits: Promise<unknown>[],
): void {
  state.pid = newPid();
  state.started = true;
  const fence = (state.fence = newFence());
  state.begun = beginCell();
  const boot: Bootstrap = {
    t: "start",
    begun: state.begun,
    name: state.name,
    pid: state.pid,
    daemon: state.daemon,
    identity: state.identity,
    parent,
    pids: pidTable(),
    fence: fence.buffer as SharedArrayBuffer,
    target: state.target,
    subclass: state.subclass,
    args: { data: args.data, reduced: args.reduced },
    fields: { data: fields.data, reduced: fields.reduced },
    library: args.reduced || fields.reduced ? libraryModule() : undefined,
    inherited: inheritedState(),
    port: portForChild(state.pid, state.daemon),
    environment: adapter.environment?.(),
    authkey: state.authkey,
  };
  // Spawned all the same: a process with resource limits, which can only be set when a worker is created;
  // and one whose code is in the library's own file (an app bundle), since a spare that loads that file runs
  // the app's top-level code ahead of its process.
  const library = libraryModule();
  state.stopsEarly = state.target?.module !== library && state.subclass?.module !== library;
  const warm = (state.startMethod ?? defaultStartMethod()) === "forkserver" && state.memoryLimit === undefined &&
    state.stopsEarly;
  const thread = startThread(warm, {
    name: state.name,
    memoryLimit: state.memoryLimit,
    detached: state.daemon,
    onMessage: (data) => {
      const kind = (data as ChildMessage).t;
      if (kind === "running") {
        state.loaded = true;
        if (state.signalled !== undefined) thread.terminate();
      }
    },
    onEnd: ({ code, error, mayRun }) => {
      if (state.exitCode !== null) return;
      // Fenced before anyone may take over what it held (ended bit), and before anyone hears of the end.
      raiseFence(fence);
      const finish = () => {
        if (state.exitCode !== null) return;
        if (error !== undefined && state.signalled === undefined) report(state.name, error);
        ended(state, state.signalled ?? code);
      };
      if (mayRun && commitInFlight(fence)) void commitEnded(fence).then(finish);
      else finish();
    },
  });
  thread.keepAlive(!state.daemon);
  state.thread = thread;
  running.set(state, process);
  // Posted now, not on a hello from the child: the worker holds it until the bootstrap module listens.
  const post = () => {
    // Stopped while the waits were pending, its start called off: the thread is gone or going.
    if (state.exitCode !== null) return;
    try {
      thread.post(boot, [...args.transfer, ...fields.transfer, ...(boot.port ? [boot.port] : [])]);
    } catch (error) {
      report(state.name, error);
      state.signalled = 1;
      thread.terminate();
    }
  };
  // A manager's count of a proxy in the args that could not be written at once: the child, started about as fast
  // as the parent starts the next one (Deno's new Worker() blocks for 13 ms), would otherwise tell the server it
  // holds that proxy before the count arrived, and its end give back a handle never counted (examples/manager.ts
  // on Deno, 3 runs in 8: "the managed object 1 was released").
  if (!waits.length) return post();
  // Bounded: a manager whose server is gone with its ring full never takes the count, and the child, started all
  // the same, then hears from its proxies that the server is gone.
  let timer: ReturnType<typeof setTimeout> | undefined;
  const bound = new Promise((resolve) => (timer = setTimeout(resolve, BOOTSTRAP_WAIT_MS)));
  void Promise.race([Promise.allSettled(waits), bound]).then(() => (clearTimeout(timer), post()));
}

/** How long a child's bootstrap waits for the work its arguments' dumping registered (see {@linkcode launch}). */
const BOOTSTRAP_WAIT_MS = 2_000;

/**
 * Resolves once the commit of a fenced child that was in flight is over: a
 * commit is a few stores, so a poll on the next turns is enough.
 */
async function commitEnded(fence: Int32Array): Promise<void> {
  while (commitInFlight(fence)) await new Promise((resolve) => setTimeout(resolve, 1));
}

/** How long a stop waits for a child that is still importing its target's module. */
const LOADING_GRACE_MS = 1_000;

/**
 * Stops a child's thread. Node 24 aborts the whole program when a worker is
 * terminated while it evaluates a module with a top-level await
 * (nodejs/node#60755), and most target modules have one, so a child that is
 * still importing is stopped once it says it is running, or after a grace.
 *
 * @example
 * ```ts ignore
 * stop(state, -15); // terminate()
 * ```
 */
export function stop(state: ProcessState, signal: number): void {
  if (!state.thread || state.exitCode !== null || state.signalled !== undefined) return;
  state.signalled = signal;
  if (state.loaded) return state.thread.terminate();
  if (state.stopsEarly && cancelStart(state.begun!)) {
    // Its start called off before it began, the child will run none of its code: it has ended, as the caller
    // sees it, now, while its thread winds down (Node took 123-150 ms to report that end; 100 ms is Python
    // docs' bound).
    state.thread.terminate();
    return ended(state, signal);
  }
  const grace = setTimeout(() => state.thread!.terminate(), LOADING_GRACE_MS);
  void state.ended.promise.then(() => clearTimeout(grace));
}

/** Records that a started child has ended with `code`. */
function ended(state: ProcessState, code: number): void {
  if (state.fence) raiseFence(state.fence);
  markEnded(state.pid!);
  state.exitCode = code;
  running.delete(state);
  state.ended.resolve();
}

/**
 * As Python's exit handler: daemonic children are stopped, the others awaited.
 *
 * @example
 * ```ts
 * import { endChildren } from "./launch.ts";
 * await endChildren();
 * ```
 */
export async function endChildren(): Promise<void> {
  for (const state of running.keys()) if (state.daemon) stop(state, -15);
  await Promise.all([...running.keys()].map((state) => state.ended.promise));
}
