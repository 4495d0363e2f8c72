/**
 * `Pool`: Python's `multiprocessing.Pool`, a fixed set of worker processes
 * that run submitted tasks, and `AsyncResult`, the handle of one submission.
 *
 * Where the speed comes from (measured, see bench/pool.ts): a task costs a
 * few microseconds, a message between threads tens of microseconds. So
 * everything submitted in one turn of the event loop is coalesced (a
 * microtask flushes it) into one message per worker, and a worker sends its
 * results back in batches too, once per millisecond of work or when it runs
 * out of tasks. How many tasks a worker may hold is a window sized from the
 * measured time per task: about {@linkcode TARGET_MS} of work, so tiny tasks
 * travel thousands to a message while long ones go one at a time and stay
 * balanced across workers.
 *
 * Where the safety comes from: each worker shares memory with the pool: the
 * number of tasks it has started, of messages it has posted, and a claim slot
 * per task in its window. When a worker dies, the pool knows which of its
 * tasks had started (they reject with `BrokenPoolError`; no task runs twice)
 * and which had not (they go to another worker), and waits for results still
 * in flight before deciding. Python's pool hangs here. A cancelled task is
 * withdrawn by winning its claim slot before the worker does; when the
 * worker won, the task is running and only killing the worker stops it.
 *
 * @module
 */
import { adapter } from "./adapters/mod.ts";
import { type Context, cpuCount } from "./context.ts";
import { BrokenPoolError, TimeoutError } from "./errors.ts";
import { debug } from "./logging.ts";
import { Process, whenEnded } from "./process.ts";
import { dump, type Dumped, load, type ReducedError, reduceError, reviveError, reviveErrorClass } from "./reduction.ts";
import { PortCarrier, unref } from "./ports.ts";
import { callerModule, describeTarget, moduleSpecifier, resolveTarget, type TargetSpec } from "./spawn.ts";
import { after, deadline, pollUntil, readWait, remaining, type Wait, type WaitOptions, within } from "./wait.ts";

type Callable = (...args: unknown[]) => unknown;

/** Options of {@linkcode Pool}, as the keyword arguments of Python's `Pool(...)`. */
export interface PoolOptions {
  /** How many worker processes; `cpuCount()` by default. */
  processes?: number;
  /** Runs once in each worker, with `initargs`, before its first task. */
  // deno-lint-ignore no-explicit-any
  initializer?: ((...args: any[]) => unknown) | string;
  /** Arguments for `initializer`; this library's objects (a Lock, a Queue …) arrive shared. */
  initargs?: readonly unknown[];
  /** A worker is replaced by a fresh one after this many tasks (a map chunk counts as one). */
  maxtasksperchild?: number | null;
  /** The module that exports the task functions and the initializer (`import.meta.url`, a URL or a specifier). */
  module?: string | URL;
  /**
   * Beyond Python: the most heap each worker may use, in MiB. A worker over it
   * rejects its task with `BrokenPoolError` and is replaced. Enforced on Node
   * only (see `ProcessOptions.memoryLimit`).
   */
  memoryLimit?: number;
  /**
   * The context whose `Process` the workers are, as Python's `Pool(context=)`:
   * `getContext("forkserver")` starts them on spare workers that have already
   * loaded the library. By default, the start method in use.
   */
  context?: Context;
}

/**
 * Per-task limits, beyond Python: when one fires, the task rejects (with
 * `TimeoutError`, or with the signal's reason) and, if it is running, its
 * worker is killed and replaced. The time counts from submission, as
 * `get(timeout)` does; a task that has not started yet is simply withdrawn.
 */
export interface TaskOptions {
  /** Milliseconds from submission. */
  timeout?: number;
  /** Aborting it cancels the task. */
  signal?: AbortSignal;
}

/** Options of {@linkcode Pool.applyAsync}. */
export interface ApplyAsyncOptions<R> extends TaskOptions {
  /** Called with the result when the task succeeds. */
  callback?: (result: R) => void;
  /** Called with the error when the task fails. */
  errorCallback?: (error: unknown) => void;
}

/** Options of {@linkcode Pool.map}, {@linkcode Pool.imap} and their kin. */
export interface MapOptions extends TaskOptions {
  /** Items per task; `map` picks Python's default, `imap` uses 1. */
  chunksize?: number;
}

/** Options of {@linkcode Pool.mapAsync} and {@linkcode Pool.starmapAsync}. */
export interface MapAsyncOptions<R> extends MapOptions {
  /** Called with the list of results when every item succeeded. */
  callback?: (results: R[]) => void;
  /** Called with the first error. */
  errorCallback?: (error: unknown) => void;
}

/**
 * What `imap` and `imapUnordered` return: an async iterator of the results,
 * as Python's `IMapIterator`. A failed item throws in its place and the next
 * call goes on with the results after it (a failed chunk throws once, for
 * all its items). `next(timeout)` throws `TimeoutError` when no result comes
 * within `timeout` ms; that result is kept for a later call.
 *
 * @example
 * ```ts
 * const results = pool.imap(square, [1, 2, 3]);
 * console.log((await results.next(1000)).value); // 1
 * for await (const y of results) console.log(y); // 4 9
 * ```
 */
export interface IMapIterator<T> extends AsyncIterator<T, undefined, number | undefined> {
  /** The next result; with `timeout`, rejects with `TimeoutError` when none comes within that many ms. */
  next(timeout?: number): Promise<IteratorResult<T, undefined>>;
  /** Stops reading the input; the results not yet read are dropped. */
  return(value?: undefined): Promise<IteratorResult<T, undefined>>;
  /** The iterator itself, for `for await`. */
  [Symbol.asyncIterator](): IMapIterator<T>;
}

/** About this much work (ms) is kept queued at each worker: enough to hide a message's round trip. */
const TARGET_MS = 2;
/** A worker reports its results at least this often (ms) while it works through a batch. */
const FLUSH_MS = 1;
/** The most tasks a worker holds, however tiny they are. */
const MAX_WINDOW = 8192;
/** How long to wait for results that a dead worker posted just before it ended. */
const IN_FLIGHT_MS = 1_000;
/** How many chunks an `imap` keeps submitted but not yet consumed, at least. */
const IMAP_AHEAD = 64;
/** How long an idle worker waits for work in Atomics.wait before its event loop runs again. */
const IDLE_WAIT_MS = 10;
/** How long it polls before that, for a caller that awaits one task at a time. */
const IDLE_POLL_MS = 0.1;
/** How soon after the last task an idle pool stops holding the program open. */
const HOLD_MS = 100;
const receiveNow = adapter.receiveNow;

/** The counters each worker shares with the pool (Int32 cells), followed by its claim slots (bytes). */
const STARTED = 0;
const POSTED = 1;
const READY = 2;
/** Rung by the pool with each batch, for a worker that waits in Atomics.wait (see `adapter.receiveNow`). */
const BELL = 3;
const COUNTERS = 4;
/**
 * A task's claim slot (index: its number at the worker, modulo the largest
 * window): not started, running, withdrawn by the pool, or being killed for
 * its limit; or finished, with where its result is.
 *
 * Results travel back in batches, so a worker that dies (its task calls
 * `exit()`, runs out of memory, or is killed for its `timeout`) would take
 * the results it had not posted yet with it, and finished tasks would fail
 * as if they had run at the death. So a finished task's result is, before
 * the next task starts, either saved in shared memory (a number, a boolean,
 * `null` or `undefined`: the slot says which, a number is in the slot's
 * Float64 cell) or posted at once (any other value): whatever kills the
 * worker, only the task that was running fails.
 */
const QUEUED = 0;
const CLAIMED = 1;
const CANCELLED = 2;
const KILLING = 3;
/** Finished; its result is posted at once (or was), so it is on its way. */
const SENT = 4;
/** Finished; its result is saved in the slot: a number in its cell, or the constant named. */
const SAVED_NUMBER = 5;
const SAVED_UNDEFINED = 6;
const SAVED_NULL = 7;
const SAVED_TRUE = 8;
const SAVED_FALSE = 9;

function counters(shared: SharedArrayBuffer): Int32Array {
  return new Int32Array(shared, 0, COUNTERS);
}

function claims(shared: SharedArrayBuffer): Uint8Array {
  return new Uint8Array(shared, COUNTERS * Int32Array.BYTES_PER_ELEMENT, MAX_WINDOW);
}

/** The Float64 cells of saved numeric results, one a claim slot, after the slots. */
const NUMBERS_AT = COUNTERS * Int32Array.BYTES_PER_ELEMENT + MAX_WINDOW;
const SHARED_BYTES = NUMBERS_AT + MAX_WINDOW * Float64Array.BYTES_PER_ELEMENT;

function savedNumbers(shared: SharedArrayBuffer): Float64Array {
  return new Float64Array(shared, NUMBERS_AT, MAX_WINDOW);
}

/** The slot state that saves `value`, or SENT when it has to travel in a message. */
function savedState(value: unknown): number {
  if (typeof value === "number") return SAVED_NUMBER;
  if (value === undefined) return SAVED_UNDEFINED;
  if (value === null) return SAVED_NULL;
  if (value === true) return SAVED_TRUE;
  return value === false ? SAVED_FALSE : SENT;
}

/** A saved result by its slot state, or `NOT_SAVED`. */
function savedValue(state: number, numbers: Float64Array, slot: number): unknown {
  switch (state) {
    case SAVED_NUMBER:
      return numbers[slot];
    case SAVED_UNDEFINED:
      return undefined;
    case SAVED_NULL:
      return null;
    case SAVED_TRUE:
      return true;
    case SAVED_FALSE:
      return false;
  }
  return NOT_SAVED;
}
const NOT_SAVED: unique symbol = Symbol("not saved");

/** How a task's data is applied to its function. */
const APPLY = 0;
const MAP = 1;
const STARMAP = 2;
type Mode = typeof APPLY | typeof MAP | typeof STARMAP;

/**
 * Main → worker: a batch of tasks. `h` holds two numbers a task: its code
 * (function id × 8 + mode × 2 + 1 when its data needs reviving) and how many
 * entries of `d` are its data (an apply's arguments, or one chunk). Arguments
 * travel flat: a list of lists costs structured clone several times as much.
 */
interface RunMessage {
  t: "run";
  f?: [number, TargetSpec][];
  h: number[];
  d: unknown[];
}
/** Worker → main: the results of the next `v.length` tasks, in order; `bad` and `rev` index into `v`. */
interface DoneMessage {
  t: "done";
  v: unknown[];
  ms: number;
  bad?: number[];
  rev?: number[];
}
interface InitErrorMessage {
  t: "init-error";
  error: ReducedError;
}

const NO_TRANSFER: Transferable[] = [];

function isPrimitive(value: unknown): boolean {
  return (typeof value !== "object" || value === null) && typeof value !== "function" && typeof value !== "symbol";
}

/** What a task's args and items may hold beyond data: functions, by reference as Python's pickle sends them. */
const TASK_VALUES = { functions: true };

/** `dump`, with a fast way out for a list of plain numbers and strings, the common case. */
function pack(values: readonly unknown[], path: string): Dumped {
  for (let i = 0; i < values.length; i++) if (!isPrimitive(values[i])) return dump(values, path, TASK_VALUES);
  return { data: values, transfer: NO_TRANSFER, reduced: false };
}

/** Chunks at least this long that hold only numbers travel as a transferred Float64Array. */
const NUMERIC_CHUNK = 16;

/**
 * A chunk of numbers as a Float64Array whose buffer is transferred, or
 * undefined. Structured clone copies a number array element by element
 * (about 70 ns each on Node); moving a buffer costs nothing per element.
 */
function numeric(items: ArrayLike<unknown>): Float64Array<ArrayBuffer> | undefined {
  if (items.length < NUMERIC_CHUNK) return undefined;
  for (let i = 0; i < items.length; i++) if (typeof items[i] !== "number") return undefined;
  return new Float64Array(items as ArrayLike<number>);
}

/** How a thrown value that is not an Error reads in a message. */
function message(value: unknown): string {
  if (typeof value === "string") return value;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (typeof value === "object" && value !== null || typeof value === "function") &&
    typeof (value as { then?: unknown }).then === "function";
}

/**
 * The loop every pool worker runs: a `Process` whose target is this export.
 * It runs the initializer, then batches of tasks in order, and reports results
 * in batches. Not for direct use.
 */
export async function poolWorker(
  port: MessagePort,
  shared: SharedArrayBuffer,
  initializer: TargetSpec | null,
  initargs: readonly unknown[],
  maxtasks: number,
): Promise<void> {
  const control = counters(shared);
  const slots = claims(shared);
  const numbers = savedNumbers(shared);
  try {
    if (initializer) await (await resolveTarget(initializer))(...initargs);
  } catch (error) {
    port.postMessage({ t: "init-error", error: reduceError(error) } satisfies InitErrorMessage);
    Atomics.store(control, POSTED, 1);
    throw error;
  }
  Atomics.store(control, READY, 1);

  const finished = Promise.withResolvers<void>();
  const fns = new Map<number, Callable | Promise<Callable>>();
  /** Queued tasks: `heads` holds (code, count) pairs, `datas` each task's `count` entries. */
  let heads: number[] = [];
  let datas: unknown[] = [];
  let head = 0;
  let at = 0;
  let seq = 0;
  let posted = 0;
  let running = false;
  let closing = false;

  let values: unknown[] = [];
  let bad: number[] | undefined;
  let rev: number[] | undefined;
  let transfer: Transferable[] = [];
  let since = 0;

  const succeed = (value: unknown) => {
    if (isPrimitive(value)) return void values.push(value);
    try {
      const dumped = Array.isArray(value) ? pack(value, "the task's result") : dump(value, "the task's result");
      if (dumped.reduced) (rev ??= []).push(values.length);
      if (dumped.transfer.length) transfer.push(...dumped.transfer);
      values.push(dumped.data);
    } catch (error) {
      fail(error);
    }
  };
  const fail = (error: unknown) => {
    (bad ??= []).push(values.length);
    values.push(reduceError(error));
  };
  const succeedChunk = (out: unknown[]) => {
    const numbers = numeric(out);
    if (!numbers) return succeed(out);
    transfer.push(numbers.buffer);
    values.push(numbers);
  };

  const flush = () => {
    if (values.length === 0) return;
    const now = performance.now();
    const message: DoneMessage = { t: "done", v: values, ms: now - since, bad, rev };
    try {
      port.postMessage(message, transfer);
    } catch (error) {
      // A value that passed dump() but not structured clone: every task of the batch reports why.
      const reduced = reduceError(error);
      port.postMessage({ t: "done", v: values.map(() => reduced), ms: message.ms, bad: values.map((_, i) => i) });
    }
    Atomics.store(control, POSTED, ++posted);
    values = [];
    bad = rev = undefined;
    transfer = [];
    since = now;
  };

  /** Runs one task whose data starts at `datas[from]`; returns a Promise only when the task is asynchronous. */
  const run = (code: number, from: number, count: number): Promise<void> | void => {
    const fn = fns.get(code >> 3);
    if (typeof fn !== "function") return fn!.then(() => run(code, from, count), fail);
    try {
      const mode = (code >> 1) & 3;
      if (mode === APPLY) {
        // Most tasks take a few plain arguments: call without building an array.
        const result = code & 1
          ? fn(...load(datas.slice(from, from + count), true) as unknown[])
          : count === 1
          ? fn(datas[from])
          : count === 0
          ? fn()
          : count === 2
          ? fn(datas[from], datas[from + 1])
          : fn(...datas.slice(from, from + count));
        if (isThenable(result)) return Promise.resolve(result).then(succeed, fail);
        return succeed(result);
      }
      const items = (code & 1 ? load(datas[from], true) : datas[from]) as unknown[];
      const out = new Array(items.length);
      for (let i = 0; i < items.length; i++) {
        const result = mode === MAP ? fn(items[i]) : fn(...(items[i] as unknown[]));
        if (isThenable(result)) return finishChunk(fn, mode, items, out, i, result).then(succeedChunk, fail);
        out[i] = result;
      }
      succeedChunk(out);
    } catch (error) {
      fail(error);
    }
  };
  const finishChunk = async (
    fn: Callable,
    mode: number,
    items: unknown[],
    out: unknown[],
    at: number,
    first: unknown,
  ) => {
    out[at] = await first;
    for (let i = at + 1; i < items.length; i++) {
      out[i] = await (mode === MAP ? fn(items[i]) : fn(...(items[i] as unknown[])));
    }
    return out;
  };

  /** Runs the queued tasks in order, reporting results at least every FLUSH_MS. */
  const work = async () => {
    since = performance.now();
    while (head < heads.length) {
      const code = heads[head];
      const count = heads[head + 1];
      const from = at;
      head += 2;
      at += count;
      Atomics.store(control, STARTED, ++seq);
      const slot = seq % MAX_WINDOW;
      if (Atomics.compareExchange(slots, slot, QUEUED, CLAIMED) === CANCELLED) values.push(undefined);
      else {
        const pending = run(code, from, count);
        if (pending) await pending;
        // Its result leaves the worker's memory before the next task can kill the worker (see SENT).
        const last = values.length - 1;
        const state = bad?.at(-1) === last || rev?.at(-1) === last ? SENT : savedState(values[last]);
        if (state === SAVED_NUMBER) numbers[slot] = values[last] as number;
        // KILLING: the pool is stopping this worker for the task's limit; the task has been answered.
        if (Atomics.compareExchange(slots, slot, CLAIMED, state) === CLAIMED && state === SENT) flush();
      }
      datas.fill(undefined, from, at);
      if (seq === maxtasks) break;
      if (performance.now() - since >= FLUSH_MS) flush();
    }
    flush();
    if (head === heads.length) (heads = [], datas = [], head = at = 0);
  };

  const accept = (message: RunMessage | { t: "close" }) => {
    if (message.t === "close") return void (closing = true);
    for (const [id, spec] of message.f ?? []) {
      const resolving = resolveTarget(spec);
      resolving.then((fn) => fns.set(id, fn), () => {});
      fns.set(id, resolving);
    }
    append(heads, message.h);
    append(datas, message.d);
  };

  /**
   * Where the runtime can take a message without the event loop, an idle
   * worker waits for the next batch (the pool rings BELL with each batch):
   * first polling for IDLE_POLL_MS, then in Atomics.wait, for up to
   * IDLE_WAIT_MS in all before it goes back to its event loop. The poll
   * catches a caller that awaits one task at a time: measured on this 2-core
   * VM, a task's round trip went from ~60 to ~25 µs on Node and Bun, as
   * waking a sleeping core costs most of it.
   */
  const awaitWork = (): boolean => {
    const end = performance.now() + IDLE_WAIT_MS;
    for (;;) {
      const bell = Atomics.load(control, BELL);
      for (let got = receiveNow!(port); got; got = receiveNow!(port)) accept(got.message as RunMessage);
      if (head < heads.length || closing) return true;
      const left = end - performance.now();
      if (left <= 0) return false;
      if (pollUntil(() => Atomics.load(control, BELL) !== bell, IDLE_POLL_MS)) continue;
      Atomics.wait(control, BELL, bell, left);
    }
  };

  const serve = async () => {
    running = true;
    // A batch accepted while `running` (by onmessage: on Deno a message event can be dispatched between two
    // microtasks, after work() has found nothing left and before this loop resumes) is served here: nothing
    // else will, as onmessage only starts serve() when it is not running.
    do await work(); while (
      seq !== maxtasks && (head < heads.length || (!closing && receiveNow !== undefined && awaitWork()))
    );
    running = false;
    if (seq === maxtasks || (closing && head === heads.length)) {
      port.close();
      finished.resolve();
    }
  };

  port.onmessage = (event: MessageEvent) => {
    accept(event.data);
    if (!running) void serve();
  };
  await finished.promise;
  debug("worker exiting after %d tasks", seq);
}

function append<T>(target: T[], source: readonly T[]): void {
  for (let i = 0; i < source.length; i++) target.push(source[i]);
}

/** Receives a chunk's outcome. */
type Sink = (ok: boolean, value: unknown) => void;

/** One submitted task. Kept small: a flood of tiny tasks is bound by the main thread's allocations. */
interface Task {
  /** As in {@linkcode RunMessage}: function id × 8 + mode × 2 + 1 when `data` needs reviving. */
  code: number;
  /** An apply's argument list, or a chunk. */
  data: unknown;
  transfer: Transferable[];
  /** Where the outcome goes, once. */
  to: AsyncResult<unknown> | Sink;
  done: boolean;
  worker: Member | undefined;
  /** The task's number at its worker: the worker's STARTED cell reaches it when the task starts. */
  seq: number;
  limit: Limit | undefined;
}

/** A task's timeout and abort signal, when it has them. */
interface Limit {
  cancelTimer?: () => void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

/** One worker process as the pool sees it. */
interface Member {
  process: Process;
  port: MessagePort;
  control: Int32Array;
  claims: Uint8Array;
  numbers: Float64Array;
  /** Tasks sent and not yet answered, in the order the worker runs them, from `head` on. */
  queue: (Task | undefined)[];
  head: number;
  sent: number;
  received: number;
  messages: number;
  /** Function ids this worker has been told about. */
  known: Set<number>;
  /** Told to exit, or already gone: it gets no more tasks. */
  closing: boolean;
  /** What the initializer threw, as it was thrown (`initFailed` tells an `undefined` from none). */
  initError?: unknown;
  initFailed?: boolean;
  caughtUp?: () => void;
}

const RUN = 0;
const CLOSE = 1;
const TERMINATE = 2;

let settleResult: (result: AsyncResult<unknown>, ok: boolean, value: unknown) => void;
let notifyResult: <T>(
  result: AsyncResult<T>,
  callback?: (value: T) => void,
  errorCallback?: (error: unknown) => void,
) => void;

/**
 * The result of a task submitted with `applyAsync`, `mapAsync` or
 * `starmapAsync`, as Python's `AsyncResult`.
 *
 * @example
 * ```ts
 * import { Pool } from "@mp/multiprocessing";
 *
 * export function square(x: number) {
 *   return x * x;
 * }
 *
 * if (import.meta.main) {
 *   await using pool = new Pool(2);
 *   const result = pool.applyAsync(square, [7]);
 *   console.log(await result.get(1000)); // 49
 *   console.log(result.ready(), result.successful()); // true true
 * }
 * ```
 */
export class AsyncResult<T> {
  #state: "pending" | "ok" | "failed" = "pending";
  #value: unknown;
  /** Made when someone waits; settled with the task. */
  #outcome?: PromiseWithResolvers<T>;
  #callback?: (value: T) => void;
  #errorCallback?: (error: unknown) => void;

  static {
    settleResult = (result, ok, value) => {
      result.#state = ok ? "ok" : "failed";
      result.#value = value;
      if (result.#outcome) ok ? result.#outcome.resolve(value) : result.#outcome.reject(value);
      if (ok) call(result.#callback, value);
      else call(result.#errorCallback, value);
    };
    notifyResult = (result, callback, errorCallback) => {
      result.#callback = callback;
      result.#errorCallback = errorCallback;
    };
  }

  /** Whether the task has finished, successfully or not. */
  ready(): boolean {
    return this.#state !== "pending";
  }

  /**
   * Whether the task finished without an error.
   *
   * @throws {Error} when the task has not finished yet.
   */
  successful(): boolean {
    if (this.#state === "pending") {
      throw new Error("AsyncResult.successful(): the result is not ready yet; await wait() first");
    }
    return this.#state === "ok";
  }

  /**
   * Waits until the task finishes or `timeout` ms pass; resolves to whether
   * it finished.
   *
   * @throws {RangeError} for a NaN or negative timeout.
   */
  async wait(timeout?: WaitOptions): Promise<boolean> {
    const wait = readWait(timeout, "AsyncResult.wait");
    return this.#state !== "pending" || await within(this.#promise().catch(() => {}), wait);
  }

  /**
   * The task's result; rejects with the task's error (its class name,
   * message, stack and cause kept) or, after `timeout` ms, with
   * `TimeoutError`. A timeout here does not stop the task.
   */
  get(timeout?: WaitOptions): Promise<T> {
    if (timeout === undefined) {
      if (this.#state === "pending") return this.#promise();
      return this.#state === "ok" ? Promise.resolve(this.#value as T) : Promise.reject(this.#value);
    }
    return this.#getWithin(timeout);
  }

  async #getWithin(timeout: WaitOptions): Promise<T> {
    const wait = readWait(timeout, "AsyncResult.get");
    if (!(await this.wait(wait))) throw new TimeoutError(`AsyncResult.get: no result within ${wait.timeout} ms`);
    return this.get();
  }

  #promise(): Promise<T> {
    return (this.#outcome ??= Promise.withResolvers<T>()).promise;
  }
}

/** Calls a user's callback; an error it throws surfaces as uncaught, as from an event listener. */
function call<A>(callback: ((arg: A) => void) | undefined, arg: A): void {
  if (!callback) return;
  try {
    callback(arg);
  } catch (error) {
    queueMicrotask(() => {
      throw error;
    });
  }
}

function readChunksize(value: unknown, what: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1) {
    throw new RangeError(`${what}: chunksize must be an integer >= 1, got ${String(value)}`);
  }
  return value;
}

/** The option names each call takes: any other is a mistake (a typo, Python's `error_callback`), never ignored. */
const TASK_KEYS = ["timeout", "signal"];
const APPLY_KEYS = [...TASK_KEYS, "callback", "errorCallback"];
const MAP_KEYS = [...TASK_KEYS, "chunksize"];
const MAP_ASYNC_KEYS = [...MAP_KEYS, "callback", "errorCallback"];

/** Checks an options object: an object, only known names, callbacks that are functions. */
function readOptions<O extends object>(options: unknown, what: string, keys: readonly string[]): O {
  if (options === undefined || options === null) return {} as O;
  if (typeof options !== "object") throw new TypeError(`${what}: options must be an object, got ${typeof options}`);
  for (const key of Object.keys(options)) {
    if (!keys.includes(key)) {
      throw new TypeError(`${what}: unknown option ${JSON.stringify(key)} (it takes ${keys.join(", ")})`);
    }
  }
  for (const key of ["callback", "errorCallback"]) {
    const value = (options as Record<string, unknown>)[key];
    if (value !== undefined && typeof value !== "function") {
      throw new TypeError(`${what}: ${key} must be a function, got ${typeof value}`);
    }
  }
  return options as O;
}

/**
 * The chunksize and options of a map: `(chunksize?, options?)` as Python's
 * `map_async(func, iterable, chunksize, callback, error_callback)`, or the
 * options alone in the place of the chunksize.
 *
 * @throws {TypeError} for a chunksize that is neither a number nor options,
 * options given twice, or an unknown option.
 */
function readMapOptions<O extends MapOptions>(
  chunksize: unknown,
  options: unknown,
  what: string,
  keys: readonly string[],
): O {
  let read: O;
  if (typeof chunksize === "object" && chunksize !== null) {
    if (options !== undefined) {
      throw new TypeError(`${what}: the options were given twice (in the place of the chunksize, and after it)`);
    }
    read = readOptions<O>(chunksize, what, keys);
  } else if (chunksize === undefined || chunksize === null || typeof chunksize === "number") {
    read = readOptions<O>(options, what, keys);
    if (typeof chunksize === "number") {
      if (read.chunksize !== undefined && read.chunksize !== chunksize) {
        throw new TypeError(`${what}: chunksize was given twice (${chunksize} and { chunksize: ${read.chunksize} })`);
      }
      read = { ...read, chunksize };
    }
  } else {
    throw new TypeError(`${what}: chunksize must be a number or an options object, got ${typeof chunksize}`);
  }
  readChunksize(read.chunksize, what);
  return read;
}

function readTaskWait(options: TaskOptions | undefined, what: string): Wait | undefined {
  if (options === undefined || (options.timeout === undefined && options.signal === undefined)) return undefined;
  return readWait(options, what);
}

function isIterable(value: unknown): value is Iterable<unknown> {
  return value !== null && value !== undefined && typeof (value as Iterable<unknown>)[Symbol.iterator] === "function";
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return value !== null && value !== undefined &&
    typeof (value as AsyncIterable<unknown>)[Symbol.asyncIterator] === "function";
}

/**
 * A pool of worker processes, as Python's `multiprocessing.Pool`: `apply`,
 * `map`, `imap`, `starmap` and their async forms. Task functions are found
 * in the workers as a `Process` target is: exported from the calling module
 * (or the `module` option), or self-contained and sent as source.
 *
 * Beyond Python: a worker that dies mid-task rejects that task with
 * `BrokenPoolError` and is replaced (Python hangs), and every task may have
 * a `timeout` and a `signal`.
 *
 * `await using pool = new Pool()` terminates the pool at the end of the
 * block, as Python's `with Pool() as pool:` does; to let queued tasks finish,
 * call `close()` and `await join()` instead.
 *
 * @example
 * ```ts
 * import { Pool } from "@mp/multiprocessing";
 *
 * export function square(x: number) {
 *   return x * x;
 * }
 *
 * if (import.meta.main) {
 *   const pool = new Pool(4);
 *   console.log(await pool.map(square, [1, 2, 3])); // [1, 4, 9]
 *   for await (const y of pool.imapUnordered(square, [4, 5])) console.log(y);
 *   pool.close();
 *   await pool.join();
 * }
 * ```
 */
export class Pool {
  #state: typeof RUN | typeof CLOSE | typeof TERMINATE = RUN;
  #broken?: BrokenPoolError;
  readonly #size: number;
  readonly #module: string | undefined;
  /** The module that called `new Pool()`: where tasks are looked up first when no `module` was given. */
  readonly #creator: string | undefined;
  readonly #initializer: TargetSpec | null;
  readonly #initargs: readonly unknown[];
  readonly #maxtasks: number;
  readonly #memoryLimit: number | undefined;
  readonly #Process: typeof Process;
  #members: Member[] = [];
  #pending: (Task | undefined)[] = [];
  #pendingHead = 0;
  #flushQueued = false;
  /** Measured milliseconds per task (EWMA); unknown until the first results. */
  #taskMs: number | undefined;
  #fnIds = new Map<unknown, number>();
  #specs: TargetSpec[] = [];
  /** Tasks not yet settled. */
  #live = 0;
  /** Calls to join() still waiting. */
  #joins = 0;
  /** While there are live tasks or joins, this timer holds the program open (the workers and ports do not). */
  #holder: ReturnType<typeof setInterval> | undefined;
  /** The input readers of the `imap` iterations still reading their input. */
  #feeding = new Set<() => Promise<void>>();
  #finished = Promise.withResolvers<void>();

  /**
   * Starts the workers: `processes` of them, `cpuCount()` by default.
   *
   * @throws {RangeError} for a size that is not a whole number of at least 1.
   * @throws {TypeError} for options that are neither a number nor an object, or a bad initializer.
   */
  constructor(options: number | PoolOptions = {}) {
    const given: PoolOptions = typeof options === "number" ? { processes: options } : options ?? {};
    if (typeof given !== "object") {
      throw new TypeError(`new Pool(processes | options): expected a number or an object, got ${typeof options}`);
    }
    const { processes = cpuCount(), initializer, initargs = [], maxtasksperchild } = given;
    if (typeof processes !== "number" || !Number.isInteger(processes) || processes < 1) {
      throw new RangeError(`new Pool: the number of processes must be an integer >= 1, got ${String(processes)}`);
    }
    if (maxtasksperchild !== undefined && maxtasksperchild !== null) {
      if (!Number.isInteger(maxtasksperchild) || maxtasksperchild < 1) {
        throw new RangeError(`new Pool: maxtasksperchild must be an integer >= 1, got ${String(maxtasksperchild)}`);
      }
    }
    if (!Array.isArray(initargs)) throw new TypeError("new Pool: initargs must be an array");
    const creator = callerModule();
    this.#module = given.module === undefined ? undefined : moduleSpecifier(given.module, creator);
    this.#creator = creator;
    this.#initializer = initializer === undefined || initializer === null
      ? null
      : describeTarget(initializer, this.#module ?? creator, "new Pool: initializer");
    dump(initargs, "initargs");
    this.#initargs = initargs;
    this.#size = processes;
    this.#maxtasks = maxtasksperchild ?? 0;
    this.#memoryLimit = given.memoryLimit;
    this.#Process = given.context?.Process ?? Process;
    for (let i = 0; i < processes; i++) this.#spawn();
  }

  /**
   * Runs `fn(...args)` in a worker and resolves to its result.
   *
   * @throws {Error} after `close()` or `terminate()`.
   * @throws {TypeError} for a target that is not a function or an export's name,
   * or arguments that cannot be sent (the message names the argument).
   *
   * @example
   * ```ts
   * const pool = new Pool(2);
   * console.log(await pool.apply(square, [3])); // 9
   * ```
   */
  apply<A extends unknown[], R>(
    fn: ((...args: A) => R) | string,
    args?: A,
    options?: TaskOptions,
  ): Promise<Awaited<R>> {
    return this.applyAsync(fn, args, options).get();
  }

  /**
   * Submits `fn(...args)` and returns its {@linkcode AsyncResult} at once;
   * `callback` or `errorCallback` is called when the task finishes.
   *
   * @throws {Error} after `close()` or `terminate()`.
   * @throws {TypeError} for a bad target or arguments that cannot be sent.
   *
   * @example
   * ```ts
   * const result = pool.applyAsync(square, [4], { callback: (y) => console.log("done", y) });
   * console.log(await result.get()); // 16
   * ```
   */
  applyAsync<A extends unknown[], R>(
    fn: ((...args: A) => R) | string,
    args?: A,
    options?: ApplyAsyncOptions<Awaited<R>>,
  ): AsyncResult<Awaited<R>> {
    this.#checkRunning("applyAsync");
    const id = this.#fnId(fn, "Pool.applyAsync");
    if (args !== undefined && !Array.isArray(args)) throw new TypeError("Pool.applyAsync: args must be an array");
    const packed = pack(args ?? [], "args");
    readOptions(options, "Pool.applyAsync", APPLY_KEYS);
    const wait = readTaskWait(options, "Pool.applyAsync");
    const result = new AsyncResult<Awaited<R>>();
    if (options?.callback || options?.errorCallback) notifyResult(result, options.callback, options.errorCallback);
    this.#submit(id, APPLY, packed, result as AsyncResult<unknown>, wait);
    return result;
  }

  /**
   * Applies `fn` to every item of `iterable` and resolves to the list of
   * results, in order. Items travel in chunks of `chunksize`; by default
   * Python's choice, about four chunks per worker.
   *
   * @throws {TypeError} when `iterable` is not iterable, or an item cannot be sent.
   * @throws {RangeError} for a chunksize below 1.
   *
   * @example
   * ```ts
   * console.log(await pool.map(square, [1, 2, 3])); // [1, 4, 9]
   * ```
   */
  map<T, R>(
    fn: ((item: T) => R) | string,
    iterable: Iterable<T>,
    chunksize?: number | MapOptions,
  ): Promise<Awaited<R>[]> {
    return this.#mapAsync<Awaited<R>>(fn, iterable, chunksize, undefined, MAP, "Pool.map", MAP_KEYS).get();
  }

  /**
   * `map`, returning an {@linkcode AsyncResult} of the whole list at once.
   *
   * @example
   * ```ts
   * const result = pool.mapAsync(square, [1, 2], { callback: (ys) => console.log(ys) });
   * await result.wait();
   * ```
   */
  mapAsync<T, R>(
    fn: ((item: T) => R) | string,
    iterable: Iterable<T>,
    chunksize?: number | null | MapAsyncOptions<Awaited<R>>,
    options?: MapAsyncOptions<Awaited<R>>,
  ): AsyncResult<Awaited<R>[]> {
    return this.#mapAsync(fn, iterable, chunksize, options, MAP, "Pool.mapAsync", MAP_ASYNC_KEYS);
  }

  /**
   * `map` for functions of several arguments: each item is the list of
   * arguments, as Python's `starmap`.
   *
   * @example
   * ```ts
   * export const add = (a: number, b: number) => a + b;
   * console.log(await pool.starmap(add, [[1, 2], [3, 4]])); // [3, 7]
   * ```
   */
  starmap<A extends unknown[], R>(
    fn: ((...args: A) => R) | string,
    iterable: Iterable<A>,
    chunksize?: number | MapOptions,
  ): Promise<Awaited<R>[]> {
    return this.#mapAsync<Awaited<R>>(fn, iterable, chunksize, undefined, STARMAP, "Pool.starmap", MAP_KEYS).get();
  }

  /**
   * `starmap`, returning an {@linkcode AsyncResult} of the whole list at once.
   *
   * @example
   * ```ts
   * const sums = await pool.starmapAsync(add, [[1, 2]]).get(); // [3]
   * ```
   */
  starmapAsync<A extends unknown[], R>(
    fn: ((...args: A) => R) | string,
    iterable: Iterable<A>,
    chunksize?: number | null | MapAsyncOptions<Awaited<R>>,
    options?: MapAsyncOptions<Awaited<R>>,
  ): AsyncResult<Awaited<R>[]> {
    return this.#mapAsync(fn, iterable, chunksize, options, STARMAP, "Pool.starmapAsync", MAP_ASYNC_KEYS);
  }

  /**
   * Applies `fn` to each item and yields the results in order, each as soon
   * as it and those before it are done. The input (any iterable or async
   * iterable, even an endless one) is read lazily, only as far ahead as the
   * pool can use: leaving the loop early stops reading it.
   *
   * @example
   * ```ts
   * for await (const y of pool.imap(square, [1, 2, 3])) console.log(y); // 1 4 9
   * ```
   */
  imap<T, R>(
    fn: ((item: T) => R) | string,
    iterable: Iterable<T> | AsyncIterable<T>,
    chunksize?: number | MapOptions,
  ): IMapIterator<Awaited<R>> {
    return this.#imap(fn, iterable, chunksize, true, "Pool.imap") as IMapIterator<Awaited<R>>;
  }

  /**
   * `imap`, yielding each result as soon as it is done, in any order.
   *
   * @example
   * ```ts
   * const ys = [];
   * for await (const y of pool.imapUnordered(square, [1, 2, 3])) ys.push(y);
   * ```
   */
  imapUnordered<T, R>(
    fn: ((item: T) => R) | string,
    iterable: Iterable<T> | AsyncIterable<T>,
    chunksize?: number | MapOptions,
  ): IMapIterator<Awaited<R>> {
    return this.#imap(fn, iterable, chunksize, false, "Pool.imapUnordered") as IMapIterator<Awaited<R>>;
  }

  /**
   * Accepts no more tasks; the workers exit once the submitted ones are done
   * (running `imap` iterations may still read their input).
   *
   * @example
   * ```ts
   * pool.close();
   * await pool.join();
   * ```
   */
  close(): void {
    if (this.#state !== RUN) return;
    this.#state = CLOSE;
    // An imap's input is now read to its end, so that join() waits for submitted work only.
    for (const feed of this.#feeding) void feed();
    this.#closeIdle();
    this.#checkFinished();
  }

  /**
   * Stops the workers at once; tasks not yet finished reject with
   * `BrokenPoolError`.
   *
   * @example
   * ```ts
   * pool.terminate();
   * await pool.join();
   * ```
   */
  terminate(): void {
    if (this.#state === TERMINATE) return;
    this.#state = TERMINATE;
    for (const feed of this.#feeding) void feed();
    this.#failAll(new BrokenPoolError("the pool was terminated before this task finished"));
    for (const member of this.#members) member.process.terminate();
    this.#checkFinished();
  }

  /**
   * Waits until every worker has exited: after `close()`, once all tasks are
   * done; after `terminate()`, at once.
   *
   * @throws {Error} while the pool is still running (call `close()` or `terminate()` first).
   *
   * @example
   * ```ts
   * pool.close();
   * await pool.join();
   * ```
   */
  async join(): Promise<void> {
    if (this.#state === RUN) {
      throw new Error("Pool.join(): the pool is still running; call close() or terminate() first");
    }
    this.#joins++;
    this.#holdOpen();
    try {
      await this.#finished.promise;
    } finally {
      this.#joins--;
    }
  }

  /** `await using pool = new Pool()`: terminates the pool and waits for its workers, as Python's `with`. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.terminate();
    await this.join();
  }

  /** Shows the state and size, as Python's repr does. */
  toString(): string {
    const state = ["RUN", "CLOSE", "TERMINATE"][this.#state];
    return `<Pool state=${state} pool_size=${this.#size}>`;
  }

  #checkRunning(what: string): void {
    if (this.#broken) throw this.#broken;
    if (this.#state !== RUN) throw new Error(`Pool.${what}: the pool is not running (it was closed or terminated)`);
  }

  #fnId(fn: unknown, what: string): number {
    let id = this.#fnIds.get(fn);
    if (id === undefined) {
      // Looked up once per function: finding the calling module costs a stack trace. Without a `module`,
      // in the module that made the pool, then at the call site (README, "Pool").
      const site = this.#module === undefined ? callerModule() : undefined;
      const spec = describeTarget(fn, this.#module ?? this.#creator ?? site, what);
      if (site !== undefined && site !== spec.module) spec.also = site;
      id = this.#specs.push(spec) - 1;
      this.#fnIds.set(fn, id);
    }
    return id;
  }

  #spawn(): void {
    const { port1, port2 } = new MessageChannel();
    const shared = new SharedArrayBuffer(SHARED_BYTES);
    const process = new this.#Process({
      target: poolWorker,
      module: import.meta.url,
      args: [new PortCarrier(port2), shared, this.#initializer, this.#initargs, this.#maxtasks],
      daemon: true,
      memoryLimit: this.#memoryLimit,
    });
    process.name = process.name.replace("Process", "SpawnPoolWorker");
    const member: Member = {
      process,
      port: port1,
      control: counters(shared),
      claims: claims(shared),
      numbers: savedNumbers(shared),
      queue: [],
      head: 0,
      sent: 0,
      received: 0,
      messages: 0,
      known: new Set(),
      closing: false,
    };
    port1.onmessage = (event: MessageEvent) => this.#receive(member, event.data);
    unref(port1);
    process.start();
    debug("added worker");
    this.#members.push(member);
    void whenEnded(process).then(() => this.#ended(member));
  }

  /**
   * Holds the program open while there is work. The timer lets go by itself
   * once the pool is idle, at most HOLD_MS later: making and clearing a timer
   * for every task would cost more than a tiny task does.
   */
  #holdOpen(): void {
    if (this.#holder !== undefined) return;
    this.#holder = setInterval(() => {
      if (this.#live + this.#joins > 0) return;
      clearInterval(this.#holder);
      this.#holder = undefined;
    }, HOLD_MS);
  }

  #submit(fn: number, mode: Mode, packed: Dumped, to: Task["to"], wait: Wait | undefined): void {
    const task: Task = {
      code: fn * 8 + mode * 2 + (packed.reduced ? 1 : 0),
      data: packed.data,
      transfer: packed.transfer,
      to,
      done: false,
      worker: undefined,
      seq: 0,
      limit: undefined,
    };
    if (this.#live++ === 0) this.#holdOpen();
    if (this.#state === TERMINATE || this.#broken) {
      return this.#settle(task, false, this.#broken ?? new BrokenPoolError("the pool was terminated"));
    }
    this.#pending.push(task);
    if (wait) this.#arm(task, wait);
    if (!this.#flushQueued) {
      this.#flushQueued = true;
      queueMicrotask(this.#flush);
    }
  }

  #arm(task: Task, wait: Wait): void {
    if (wait.signal?.aborted) return this.#expire(task, wait.signal.reason);
    const limit: Limit = (task.limit = {});
    if (wait.timeout !== Infinity) {
      const ms = wait.timeout;
      limit.cancelTimer = after(
        ms,
        () => this.#expire(task, new TimeoutError(`the task did not finish within ${ms} ms`)),
      );
    }
    if (wait.signal) {
      const signal = wait.signal;
      limit.signal = signal;
      limit.onAbort = () => this.#expire(task, signal.reason);
      signal.addEventListener("abort", limit.onAbort, { once: true });
    }
  }

  /**
   * A task's timeout or signal fired: withdraw it if it has not started, stop
   * its worker if it runs; if it has just finished, its result stands.
   */
  #expire(task: Task, reason: unknown): void {
    if (task.done) return;
    const member = task.worker;
    if (!member) return this.#settle(task, false, reason);
    const slot = task.seq % MAX_WINDOW;
    let state = Atomics.compareExchange(member.claims, slot, QUEUED, CANCELLED);
    if (state === CLAIMED) {
      state = Atomics.compareExchange(member.claims, slot, CLAIMED, KILLING);
      if (state === CLAIMED) {
        this.#settle(task, false, reason);
        return member.process.kill();
      }
    }
    if (state === QUEUED || state === CANCELLED) return this.#settle(task, false, reason);
    // Finished in time: a saved result is read now, a sent one is on its way.
    const saved = savedValue(state, member.numbers, slot);
    if (saved !== NOT_SAVED) this.#settle(task, true, saved);
  }

  /** Rejects with the task's error, once its class is found (see `reviveErrorClass`). */
  #fail(task: Task, error: unknown): void {
    if (error instanceof Promise) void error.then((revived) => this.#settle(task, false, revived));
    else this.#settle(task, false, error);
  }

  #settle(task: Task, ok: boolean, value: unknown): void {
    if (task.done) return;
    task.done = true;
    const limit = task.limit;
    if (limit) {
      limit.cancelTimer?.();
      if (limit.onAbort) limit.signal!.removeEventListener("abort", limit.onAbort);
    }
    this.#live--;
    if (typeof task.to === "function") task.to(ok, value);
    else settleResult(task.to, ok, value);
  }

  /** Sends pending tasks to workers with room, spread evenly. */
  #flush = (): void => {
    this.#flushQueued = false;
    if (this.#pending.length === this.#pendingHead) return;
    const window = this.#taskMs === undefined
      ? 1
      : Math.max(1, Math.min(MAX_WINDOW, Math.floor(TARGET_MS / Math.max(this.#taskMs, 1e-4))));
    const open: [Member, number][] = [];
    for (const member of this.#members) {
      let room = window - (member.sent - member.received);
      if (this.#maxtasks) room = Math.min(room, this.#maxtasks - member.sent);
      if (room > 0 && !member.closing) open.push([member, room]);
    }
    // In the workers' order, not round robin: a worker that has just run is quickest to wake (14 against 50 µs).
    for (let k = 0; k < open.length && this.#pending.length > this.#pendingHead; k++) {
      const [member, room] = open[k];
      const left = this.#pending.length - this.#pendingHead;
      this.#send(member, Math.min(room, Math.ceil(left / (open.length - k))));
    }
  };

  /** Sends up to `count` pending tasks to `member` in one message. */
  #send(member: Member, count: number): void {
    const heads: number[] = [];
    const datas: unknown[] = [];
    let transfer = NO_TRANSFER;
    let fns: [number, TargetSpec][] | undefined;
    while (heads.length < 2 * count && this.#pendingHead < this.#pending.length) {
      const task = this.#pending[this.#pendingHead]!;
      this.#pending[this.#pendingHead++] = undefined;
      if (task.done) continue;
      const fn = task.code >> 3;
      if (!member.known.has(fn)) {
        member.known.add(fn);
        (fns ??= []).push([fn, this.#specs[fn]]);
      }
      if (((task.code >> 1) & 3) === APPLY) {
        const args = task.data as unknown[];
        heads.push(task.code, args.length);
        for (let i = 0; i < args.length; i++) datas.push(args[i]);
      } else {
        heads.push(task.code, 1);
        datas.push(task.data);
      }
      if (task.transfer.length) transfer = [...transfer, ...task.transfer];
      task.worker = member;
      task.seq = ++member.sent;
      // Free: the slot's previous task is answered, since no more than MAX_WINDOW are outstanding.
      Atomics.store(member.claims, task.seq % MAX_WINDOW, QUEUED);
      member.queue.push(task);
    }
    if (this.#pendingHead === this.#pending.length) (this.#pending = [], this.#pendingHead = 0);
    if (heads.length === 0) return;
    member.port.postMessage({ t: "run", f: fns, h: heads, d: datas } satisfies RunMessage, transfer);
    if (receiveNow) {
      Atomics.add(member.control, BELL, 1);
      Atomics.notify(member.control, BELL);
    }
  }

  #receive(member: Member, message: DoneMessage | InitErrorMessage): void {
    member.messages++;
    if (message.t === "init-error") {
      member.initError = reviveError(message.error);
      member.initFailed = true;
    } else {
      const { v, bad, rev } = message;
      const sample = message.ms / v.length;
      this.#taskMs = this.#taskMs === undefined ? sample : (this.#taskMs + sample) / 2;
      let b = 0;
      let r = 0;
      for (let i = 0; i < v.length; i++) {
        const task = member.queue[member.head]!;
        member.queue[member.head++] = undefined;
        if (bad && bad[b] === i) (b++, this.#fail(task, reviveErrorClass(v[i] as ReducedError)));
        else if (rev && rev[r] === i) (r++, this.#settle(task, true, load(v[i], true)));
        else this.#settle(task, true, v[i]);
      }
      member.received += v.length;
      if (member.head === member.queue.length) (member.queue = [], member.head = 0);
    }
    if (member.caughtUp && member.messages >= Atomics.load(member.control, POSTED)) member.caughtUp();
    this.#flush();
    this.#closeIdle();
  }

  /** A worker ended, by design or not: settle or re-queue its tasks, and replace it if work remains. */
  async #ended(member: Member): Promise<void> {
    member.closing = true;
    // Results it posted just before it ended may still be on their way.
    if (this.#state !== TERMINATE && member.messages < Atomics.load(member.control, POSTED)) {
      const caughtUp = new Promise<void>((resolve) => (member.caughtUp = resolve));
      await within(caughtUp, { timeout: IN_FLIGHT_MS });
    }
    member.port.close();
    this.#members.splice(this.#members.indexOf(member), 1);
    const { name, pid, exitCode } = member.process;
    debug("cleaning up worker %d", pid);
    const started = Atomics.load(member.control, STARTED);
    const unstarted: Task[] = [];
    for (let i = member.head; i < member.queue.length; i++) {
      const task = member.queue[i]!;
      if (task.done) continue;
      const slot = task.seq % MAX_WINDOW;
      const saved = task.seq <= started
        ? savedValue(Atomics.load(member.claims, slot), member.numbers, slot)
        : NOT_SAVED;
      if (saved !== NOT_SAVED) this.#settle(task, true, saved);
      else if (task.seq <= started) {
        this.#settle(
          task,
          false,
          new BrokenPoolError(
            `the pool worker ${name} (pid ${pid}) ended with exit code ${exitCode} while it ran this task`,
          ),
        );
      } else {
        task.worker = undefined;
        unstarted.push(task);
      }
    }
    this.#pending.splice(this.#pendingHead, 0, ...unstarted);
    if (this.#state !== TERMINATE && !this.#broken && Atomics.load(member.control, READY) === 0) {
      const cause = member.initError;
      this.#break(
        new BrokenPoolError(
          member.initFailed
            ? `the pool's initializer failed in ${name}: ${cause instanceof Error ? cause.message : message(cause)}`
            : `the pool worker ${name} (pid ${pid}) ended with exit code ${exitCode} before it was ready to run tasks`,
          { cause },
        ),
      );
    }
    if (
      !this.#broken && (this.#state === RUN || (this.#state === CLOSE && (this.#live > 0 || this.#feeding.size > 0)))
    ) {
      this.#spawn();
    }
    this.#flush();
    this.#closeIdle();
    this.#checkFinished();
  }

  /** Initialization failed: nothing submitted can run, so every task fails and no worker is replaced. */
  #break(error: BrokenPoolError): void {
    this.#broken = error;
    this.#failAll(error);
    for (const member of this.#members) member.process.terminate();
  }

  #failAll(error: Error): void {
    const tasks = this.#pending.slice(this.#pendingHead);
    this.#pending = [];
    this.#pendingHead = 0;
    for (const member of this.#members) tasks.push(...member.queue.slice(member.head) as Task[]);
    for (const task of tasks) if (task) this.#settle(task, false, error);
  }

  /** After close(): tells each worker with nothing left to do to exit. */
  #closeIdle(): void {
    if (this.#state !== CLOSE || this.#feeding.size > 0 || this.#pending.length > this.#pendingHead) return;
    for (const member of this.#members) {
      if (!member.closing && member.sent === member.received) {
        member.closing = true;
        member.port.postMessage({ t: "close" });
      }
    }
  }

  #checkFinished(): void {
    if (this.#state !== RUN && this.#members.length === 0) this.#finished.resolve();
  }

  #mapAsync<R>(
    fn: unknown,
    iterable: unknown,
    chunksize: unknown,
    given: unknown,
    mode: Mode,
    what: string,
    keys: readonly string[],
  ): AsyncResult<R[]> {
    this.#checkRunning(what.slice("Pool.".length));
    const id = this.#fnId(fn, what);
    if (!isIterable(iterable)) {
      throw new TypeError(
        `${what}: the items must be iterable (an array, a Set, a generator …), got ${typeof iterable}`,
      );
    }
    const options = readMapOptions<MapAsyncOptions<R>>(chunksize, given, what, keys);
    const wait = readTaskWait(options, what);
    const items = Array.from(iterable);
    const size = options.chunksize ?? Math.ceil(items.length / (this.#size * 4));
    const chunks: Dumped[] = [];
    for (let start = 0; start < items.length; start += size) {
      chunks.push(this.#packChunk(items.slice(start, start + size), start, mode, what));
    }
    const result = new AsyncResult<R[]>();
    notifyResult(result, options.callback, options.errorCallback);
    const finish = (ok: boolean, value: unknown) => {
      if (!result.ready()) settleResult(result as AsyncResult<unknown>, ok, value);
    };
    const out = new Array(items.length);
    let left = chunks.length;
    if (left === 0) finish(true, out);
    for (let c = 0; c < chunks.length; c++) {
      this.#submit(id, mode, chunks[c], (ok, value) => {
        if (!ok) return finish(false, value);
        const values = value as R[];
        for (let i = 0, at = c * size; i < values.length; i++) out[at + i] = values[i];
        if (--left === 0) finish(true, out);
      }, wait);
    }
    return result;
  }

  /** Prepares one chunk; an item that cannot be sent is named by its index in the input. */
  #packChunk(items: unknown[], offset: number, mode: Mode, what: string): Dumped {
    const numbers = mode === MAP ? numeric(items) : undefined;
    if (numbers) return { data: numbers, transfer: [numbers.buffer], reduced: false };
    let reduced = false;
    let transfer = NO_TRANSFER;
    for (let k = 0; k < items.length; k++) {
      const item = items[k];
      if (mode === STARMAP && !Array.isArray(item)) {
        throw new TypeError(`${what}: iterable[${offset + k}] must be an array of arguments, got ${typeof item}`);
      }
      if (isPrimitive(item)) continue;
      const dumped = dump(item, `iterable[${offset + k}]`, TASK_VALUES);
      items[k] = dumped.data;
      reduced ||= dumped.reduced;
      if (dumped.transfer.length) transfer = [...transfer, ...dumped.transfer];
    }
    return { data: items, transfer, reduced };
  }

  #imap(
    fn: unknown,
    iterable: unknown,
    chunksize: unknown,
    ordered: boolean,
    what: string,
  ): IMapIterator<unknown> {
    this.#checkRunning(what.slice("Pool.".length));
    const id = this.#fnId(fn, what);
    const asynchronous = isAsyncIterable(iterable);
    if (!asynchronous && !isIterable(iterable)) {
      throw new TypeError(`${what}: the items must be iterable or async iterable, got ${typeof iterable}`);
    }
    const options = readMapOptions<MapOptions>(chunksize, undefined, what, MAP_KEYS);
    const wait = readTaskWait(options, what);
    const size = options.chunksize ?? 1;
    const ahead = Math.max(IMAP_AHEAD, 2 * this.#size);
    const source: Iterator<unknown> | AsyncIterator<unknown> = asynchronous
      ? iterable[Symbol.asyncIterator]()
      : (iterable as Iterable<unknown>)[Symbol.iterator]();

    /** Outcomes of finished chunks: by chunk number when ordered, else in the order they finished. */
    const outcomes = new Map<number, [boolean, unknown]>();
    let submitted = 0;
    let consumed = 0;
    let finishedCount = 0;
    let exhausted = false;
    let stopped = false;
    let reading = false;
    let wake: (() => void) | undefined;
    let items: unknown[] = [];
    let at = 0;

    const stopFeeding = () => {
      if (exhausted) return;
      exhausted = true;
      this.#feeding.delete(feed);
      this.#closeIdle();
      wake?.();
    };
    const deliver = (chunk: number, ok: boolean, value: unknown) => {
      outcomes.set(ordered ? chunk : finishedCount++, [ok, value]);
      wake?.();
    };
    /**
     * Reads the input only as far ahead of the reader as the pool can use,
     * but after close() to its end, as Python's task handler does: join()
     * then waits for the submitted work only, and the results wait for the
     * reader.
     */
    const feed = async () => {
      if (reading) return;
      reading = true;
      try {
        while (!exhausted && !stopped && (submitted - consumed < ahead || this.#state === CLOSE)) {
          if (this.#state === TERMINATE) return stopFeeding();
          // Past the window a synchronous input would be read in one go: let results and messages in meanwhile.
          if (submitted - consumed >= ahead && submitted % ahead === 0) {
            await new Promise((resolve) => setTimeout(resolve, 0));
          }
          const chunk: unknown[] = [];
          while (chunk.length < size) {
            const step = asynchronous ? await source.next() : source.next() as IteratorResult<unknown>;
            if (step.done) {
              stopFeeding();
              break;
            }
            chunk.push(step.value);
          }
          if (chunk.length === 0 || stopped) break;
          const n = submitted++;
          const offset = n * size;
          let packed: Dumped;
          try {
            packed = this.#packChunk(chunk, offset, MAP, what);
          } catch (error) {
            deliver(n, false, error);
            continue;
          }
          this.#submit(id, MAP, packed, (ok, value) => deliver(n, ok, value), wait);
        }
      } catch (error) {
        // The input itself failed: its error takes the next place in the results.
        deliver(submitted++, false, error);
        stopFeeding();
      } finally {
        reading = false;
      }
    };
    this.#feeding.add(feed);

    /** The next result; a failed chunk throws in its place and the one after goes on, as Python's IMapIterator. */
    const step = async (end: number, ms: number): Promise<IteratorResult<unknown, undefined>> => {
      for (;;) {
        if (at < items.length) return { value: items[at++], done: false };
        if (stopped) return { value: undefined, done: true };
        const outcome = outcomes.get(consumed);
        if (outcome) {
          outcomes.delete(consumed++);
          void feed();
          if (!outcome[0]) throw outcome[1];
          items = outcome[1] as unknown[];
          at = 0;
          continue;
        }
        if (exhausted && consumed === submitted) {
          finish();
          return { value: undefined, done: true };
        }
        const woken = new Promise<void>((resolve) => (wake = resolve));
        void feed();
        const came = await within(woken, { timeout: remaining(end) });
        wake = undefined;
        // The result that comes later is kept for the next call.
        if (!came) throw new TimeoutError(`${what}: no result within ${ms} ms`);
      }
    };
    const finish = () => {
      if (stopped) return;
      stopped = true;
      items = [];
      outcomes.clear();
      if (!exhausted) {
        stopFeeding();
        void Promise.resolve(source.return?.()).catch(() => {});
      }
    };

    // Calls to next() run one after another, as an async generator's do; a timeout counts from the call.
    let last: Promise<unknown> = Promise.resolve();
    const iterator: IMapIterator<unknown> = {
      next: (timeout?: number) => {
        const ms = readWait(timeout, `${what}: next`).timeout;
        const end = deadline(ms);
        const result = last.then(() => step(end, ms));
        last = result.catch(() => {});
        return result;
      },
      return: (value?: undefined) => {
        const result = last.then(() => {
          finish();
          return { value, done: true as const };
        });
        last = result;
        return result;
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
    void feed();
    return iterator;
  }
}
export { notifyResult, settleResult }; // for the cluster pool (src/cluster/pool.ts), which settles the same AsyncResult
