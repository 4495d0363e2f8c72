/**
 * `Pool`: Python's `multiprocessing.Pool` on this machine's worker
 * processes. The surface (argument checks, chunks, results, callbacks) is
 * `PoolSurface` (surface.ts); this file decides which worker gets which
 * task and looks after the workers: the pool's half of a task's round trip
 * is submit → `#flush` → `Member.send` … `Member.receive` → `#settle`, with
 * a task's limits (limit.ts, `#expire`) and a worker's death (`#ended`).
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
 * Where the safety comes from: the claim slots each worker shares with the
 * pool (claims.ts). When a worker dies, the pool knows which of its tasks had
 * started (they reject with `BrokenPoolError`; no task runs twice) and which
 * had not (they go to another worker), and waits for results still in
 * flight before deciding. Python's pool hangs here.
 *
 * @module
 */
import { BrokenPoolError } from "../errors.ts";
import { debug } from "../logging.ts";
import { Process, whenEnded } from "../process.ts";
import { dump, type Dumped } from "../reduction.ts";
import { callerModule, describeTarget, moduleSpecifier, type TargetSpec } from "../spawn.ts";
import { type Wait, within } from "../wait.ts";
import { MAX_WINDOW, NOT_SAVED } from "./claims.ts";
import { Limit } from "./limit.ts";
import { Member, type Settler, type Task, type WorkerPlan } from "./member.ts";
import { type PoolOptions, readPoolOptions } from "./options.ts";
import {
  isPrimitive,
  MAP,
  type Mode,
  NO_TRANSFER,
  numeric,
  pack,
  TASK_VALUES,
  taskCode,
  type ToPool,
} from "./protocol.ts";
import { deliver, type Outcome } from "./results.ts";
import { attachRoute, PoolCalls, type TaskRoute } from "./surface.ts";

/** About this much work (ms) is kept queued at each worker: enough to hide a message's round trip. */
const TARGET_MS = 2;
/** How many batches' timings the estimate of a task's time is the median of. */
const SAMPLES = 5;
/** How long to wait for results that a dead worker posted just before it ended. */
const IN_FLIGHT_MS = 1_000;
/** How soon after the last task an idle pool stops holding the program open. */
const HOLD_MS = 100;

const RUN = 0;
const CLOSE = 1;
const TERMINATE = 2;

/** How a thrown value that is not an Error reads in a message. */
function message(value: unknown): string {
  if (typeof value === "string") return value;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
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
export class Pool extends PoolCalls {
  #state: typeof RUN | typeof CLOSE | typeof TERMINATE = RUN;
  #broken?: BrokenPoolError;
  readonly #size: number;
  readonly #module: string | undefined;
  /** The module that called `new Pool()`: where tasks are looked up first when no `module` was given. */
  readonly #creator: string | undefined;
  readonly #plan: WorkerPlan;
  readonly #settler: Settler = {
    settle: (task, ok, value) => this.#settle(task, ok, value),
    fail: (task, error) => {
      if (error instanceof Promise) void error.then((revived) => this.#settle(task, false, revived));
      else this.#settle(task, false, error);
    },
  };
  readonly #onMessage = (member: Member, message: ToPool) => this.#receive(member, message);
  #members: Member[] = [];
  #pending: (Task | undefined)[] = [];
  #pendingHead = 0;
  #flushQueued = false;
  /** Measured milliseconds per task: the median of the last few batches' (see `#measured`); unknown until then. */
  #taskMs: number | undefined;
  /** The last batches' milliseconds per task, oldest first. */
  #samples: number[] = [];
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
    super();
    const { processes, initializer, initargs, maxtasks, memoryLimit, Process: Worker, module } = readPoolOptions(
      options,
      Process,
    );
    const creator = callerModule();
    this.#module = module === undefined ? undefined : moduleSpecifier(module, creator);
    this.#creator = creator;
    this.#plan = {
      Process: Worker,
      initializer: initializer === undefined || initializer === null
        ? null
        : describeTarget(initializer, this.#module ?? creator, "new Pool: initializer"),
      initargs,
      maxtasks,
      memoryLimit,
    };
    dump(initargs, "initargs");
    this.#size = processes;
    attachRoute(this, this.#route());
    for (let i = 0; i < processes; i++) this.#spawn();
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
  override toString(): string {
    const state = ["RUN", "CLOSE", "TERMINATE"][this.#state];
    return `<Pool state=${state} pool_size=${this.#size}>`;
  }

  /** What the surface (surface.ts) needs: how this pool's tasks reach its workers. */
  #route(): TaskRoute<Dumped> {
    return {
      checkRunning: (what) => {
        if (this.#broken) throw this.#broken;
        if (this.#state !== RUN) throw new Error(`Pool.${what}: the pool is not running (it was closed or terminated)`);
      },
      fnId: (fn, what) => this.#fnId(fn, what),
      processes: () => this.#size,
      packArgs: (args) => pack(args, "args"),
      packChunk: packChunk,
      submit: (fn, mode, packed, to, wait) => this.#submit(fn, mode, packed, to, wait),
      closed: () => this.#state === CLOSE,
      terminated: () => this.#state === TERMINATE,
      reading: (feed, on) => {
        if (on) return void this.#feeding.add(feed);
        this.#feeding.delete(feed);
        this.#closeIdle();
      },
    };
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
    const member = new Member(this.#plan, this.#onMessage);
    this.#members.push(member);
    void whenEnded(member.process).then(() => this.#ended(member));
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

  #submit(fn: number, mode: Mode, packed: Dumped, to: Outcome, wait: Wait | undefined): void {
    const task: Task = {
      code: taskCode(fn, mode, packed.reduced),
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
    if (wait) task.limit = Limit.arm(wait, (reason) => this.#expire(task, reason));
    if (!this.#flushQueued) {
      this.#flushQueued = true;
      queueMicrotask(this.#flush);
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
    const found = member.cells.withdraw(task.seq);
    if (found.kind === "running") {
      this.#settle(task, false, reason);
      return member.process.kill();
    }
    if (found.kind === "withdrawn") return this.#settle(task, false, reason);
    // Finished in time: a saved result is read now, a sent one is on its way.
    if (found.value !== NOT_SAVED) this.#settle(task, true, found.value);
  }

  #settle(task: Task, ok: boolean, value: unknown): void {
    if (task.done) return;
    task.done = true;
    task.limit?.disarm();
    this.#live--;
    deliver(task.to, ok, value);
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
      let room = window - member.outstanding;
      if (this.#plan.maxtasks) room = Math.min(room, this.#plan.maxtasks - member.sent);
      if (room > 0 && !member.closing) open.push([member, room]);
    }
    // In the workers' order, not round robin: a worker that has just run is quickest to wake (14 against 50 µs).
    for (let k = 0; k < open.length && this.#pending.length > this.#pendingHead; k++) {
      const [member, room] = open[k];
      const left = this.#pending.length - this.#pendingHead;
      this.#pendingHead = member.send(
        this.#pending,
        this.#pendingHead,
        Math.min(room, Math.ceil(left / (open.length - k))),
        this.#specs,
      );
      if (this.#pendingHead === this.#pending.length) (this.#pending = [], this.#pendingHead = 0);
    }
  };

  #receive(member: Member, message: ToPool): void {
    const sample = member.receive(message, this.#settler);
    if (sample !== undefined) this.#measured(sample);
    if (member.caughtUp && member.caughtUpWith()) member.caughtUp();
    this.#balance(member);
    this.#flush();
    this.#closeIdle();
  }

  /**
   * A worker that has run out of tasks, with none pending, takes half of the
   * tasks another worker holds and has not started. A map's chunks go out
   * four to a worker at once, so one worker that the OS took off its core, or
   * that woke late or collected garbage, held the map up while the other sat
   * idle: on this 2-core VM, maps of 2 ms took 5–100 ms that way.
   * Not with `maxtasksperchild`: a stolen task would count at both workers.
   */
  #balance(idle: Member): void {
    if (this.#plan.maxtasks || idle.closing || idle.outstanding > 0) return;
    if (this.#pending.length > this.#pendingHead) return;
    let victim: Member | undefined;
    let most = 0;
    for (const member of this.#members) {
      const unstarted = member === idle || member.closing ? 0 : member.unstarted();
      if (unstarted > most) (most = unstarted, victim = member);
    }
    if (!victim) return;
    const taken = victim.steal(Math.ceil(most / 2));
    idle.send(taken, 0, taken.length, this.#specs);
  }

  /**
   * A batch's milliseconds per task, as its worker measured them: wall time,
   * which a worker the OS took off its core (8 helpers share this 2-core
   * machine) or that collected garbage inflates many times over. One such
   * batch, averaged in, shrank the window to a chunk a message: measured on
   * Node with 20 maps of 100k items in one program, the maps after it sent
   * their 8 chunks in 7-8 messages instead of 2 and waited for as many round
   * trips. The median of the last SAMPLES batches ignores a lone outlier
   * and still follows a change of workload within a few batches.
   */
  #measured(sample: number): void {
    const samples = this.#samples;
    if (samples.push(sample) > SAMPLES) samples.shift();
    const sorted = samples.length === 1 ? samples : [...samples].sort((a, b) => a - b);
    this.#taskMs = sorted[(sorted.length - 1) >> 1];
  }

  /** A worker ended, by design or not: settle or re-queue its tasks, and replace it if work remains. */
  async #ended(member: Member): Promise<void> {
    member.closing = true;
    // Results it posted just before it ended may still be on their way.
    if (this.#state !== TERMINATE && !member.caughtUpWith()) {
      const caughtUp = new Promise<void>((resolve) => (member.caughtUp = resolve));
      await within(caughtUp, { timeout: IN_FLIGHT_MS });
    }
    member.port.close();
    this.#members.splice(this.#members.indexOf(member), 1);
    const { name, pid, exitCode } = member.process;
    debug("cleaning up worker %d", pid);
    this.#pending.splice(this.#pendingHead, 0, ...member.orphans(this.#settler));
    if (this.#state !== TERMINATE && !this.#broken && !member.cells.ready()) {
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
    for (const member of this.#members) tasks.push(...member.held());
    for (const task of tasks) if (task) this.#settle(task, false, error);
  }

  /** After close(): tells each worker with nothing left to do to exit. */
  #closeIdle(): void {
    if (this.#state !== CLOSE || this.#feeding.size > 0 || this.#pending.length > this.#pendingHead) return;
    for (const member of this.#members) if (!member.closing && member.outstanding === 0) member.close();
  }

  #checkFinished(): void {
    if (this.#state !== RUN && this.#members.length === 0) this.#finished.resolve();
  }
}

/**
 * Prepares `items[start, end)` for the trip, the first being the input's
 * item `index`; an item that cannot be sent is named by its index in the
 * input. Numbers go straight into a shared Float64Array, without a copy of
 * the slice in between (see `numeric`).
 */
function packChunk(source: readonly unknown[], start: number, end: number, index: number, mode: Mode): Dumped {
  const numbers = mode === MAP ? numeric(source, start, end, true) : undefined;
  if (numbers) return { data: numbers, transfer: NO_TRANSFER, reduced: false };
  const items = source.slice(start, end);
  let reduced = false;
  let transfer = NO_TRANSFER;
  for (let k = 0; k < items.length; k++) {
    const item = items[k];
    if (isPrimitive(item)) continue;
    const dumped = dump(item, `iterable[${index + k}]`, TASK_VALUES);
    items[k] = dumped.data;
    reduced ||= dumped.reduced;
    if (dumped.transfer.length) transfer = [...transfer, ...dumped.transfer];
  }
  return { data: items, transfer, reduced };
}
