/**
 * The loop every pool worker runs, the worker's half of a task's round trip:
 * accept a batch ({@linkcode RunMessage}), claim each task's slot, run it,
 * save or post its result, and report the results in batches
 * ({@linkcode DoneMessage}) at least every {@linkcode FLUSH_MS} of work or
 * when the batch is done. A pool worker loads this module, not the pool's.
 *
 * @module
 */
import { adapter } from "../adapters/mod.ts";
import { debug } from "../logging.ts";
import { dump, load, reduceError } from "../reduction.ts";
import { resolveTarget, type TargetSpec } from "../spawn.ts";
import { isThenable } from "../thenable.ts";
import { pollUntil } from "../wait.ts";
import { WorkerCells } from "./claims.ts";
import {
  APPLY,
  codeFunction,
  codeMode,
  codeReduced,
  type DoneMessage,
  type InitErrorMessage,
  isPrimitive,
  MAP,
  numeric,
  NUMERIC_CHUNK,
  pack,
  type RunMessage,
  type ToWorker,
} from "./protocol.ts";

type Callable = (...args: unknown[]) => unknown;

/** This module, which each pool worker loads for its target {@linkcode poolWorker}. */
export const WORKER_MODULE: string = import.meta.url;

/** A worker reports its results at least this often (ms) while it works through a batch. */
const FLUSH_MS = 1;
/** How long an idle worker waits for work in Atomics.wait before its event loop runs again. */
const IDLE_WAIT_MS = 10;
/** How long it polls before that, for a caller that awaits one task at a time. */
const IDLE_POLL_MS = 0.1;
const receiveNow = adapter.poolPollsPorts ? adapter.receiveNow : undefined;

/**
 * The loop every pool worker runs: a `Process` whose target is this export.
 * It runs the initializer, then batches of tasks in order, and reports results
 * in batches. Not for direct use.
 *
 * @example
 * ```ts
 * // What a Pool does for each worker (see src/pool/member.ts):
 * new Process({ target: poolWorker, args: [port, shared, null, [], 0] });
 * ```
 */
export async function poolWorker(
  port: MessagePort,
  shared: SharedArrayBuffer,
  initializer: TargetSpec | null,
  initargs: readonly unknown[],
  maxtasks: number,
): Promise<void> {
  const cells = new WorkerCells(shared);
  try {
    if (initializer) await (await resolveTarget(initializer))(...initargs);
  } catch (error) {
    port.postMessage({ kind: "init-error", error: reduceError(error) } satisfies InitErrorMessage);
    cells.markPosted(1);
    throw error;
  }
  cells.markReady();
  const loop = new WorkerLoop(port, cells, maxtasks);
  await loop.finished;
  debug("worker exiting after %d tasks", loop.seq);
}

/** The results of the tasks run since the last report: the next {@linkcode DoneMessage}. */
class Report {
  results: unknown[] = [];
  failed: number[] | undefined;
  reduced: number[] | undefined;
  transfer: Transferable[] = [];
  since = performance.now();

  succeed(value: unknown): void {
    if (isPrimitive(value)) return void this.results.push(value);
    try {
      const dumped = Array.isArray(value) ? pack(value, "the task's result") : dump(value, "the task's result");
      if (dumped.reduced) (this.reduced ??= []).push(this.results.length);
      if (dumped.transfer.length) this.transfer.push(...dumped.transfer);
      this.results.push(dumped.data);
    } catch (error) {
      this.fail(error);
    }
  }

  /** A chunk's results, all numbers: the Float64Array travels, its buffer moved. */
  succeedNumbers(numbers: Float64Array<ArrayBuffer>): void {
    this.transfer.push(numbers.buffer);
    this.results.push(numbers);
  }

  succeedChunk(out: unknown[]): void {
    const numbers = numeric(out);
    if (!numbers) return this.succeed(out);
    this.succeedNumbers(numbers);
  }

  fail(error: unknown): void {
    (this.failed ??= []).push(this.results.length);
    this.results.push(reduceError(error));
  }

  /** Whether the last result must travel in a message whatever it is (an error, or a value to revive). */
  lastTravels(): boolean {
    const last = this.results.length - 1;
    return this.failed?.at(-1) === last || this.reduced?.at(-1) === last;
  }

  /** Posts the results so far, if any; returns whether it posted. */
  post(port: MessagePort): boolean {
    if (this.results.length === 0) return false;
    const now = performance.now();
    const message: DoneMessage = {
      kind: "done",
      results: this.results,
      ms: now - this.since,
      failed: this.failed,
      reduced: this.reduced,
    };
    try {
      port.postMessage(message, this.transfer);
    } catch (error) {
      // A value that passed dump() but not structured clone: every task of the batch reports why.
      const reduced = reduceError(error);
      port.postMessage(
        {
          kind: "done",
          results: this.results.map(() => reduced),
          ms: message.ms,
          failed: this.results.map((_, i) => i),
        } satisfies DoneMessage,
      );
    }
    this.results = [];
    this.failed = this.reduced = undefined;
    this.transfer = [];
    this.since = now;
    return true;
  }
}

/** One worker's state: the tasks it holds, the functions it knows, the report being built. */
class WorkerLoop {
  readonly finished: Promise<void>;
  /** Tasks started so far: a task's number at this worker. */
  seq = 0;
  readonly #port: MessagePort;
  readonly #cells: WorkerCells;
  readonly #maxtasks: number;
  readonly #done = Promise.withResolvers<void>();
  readonly #fns = new Map<number, Callable | Promise<Callable>>();
  /** Queued tasks: `#heads` holds (code, count) pairs from `#head` on, `#datas` each task's `count` entries. */
  #heads: number[] = [];
  #datas: unknown[] = [];
  #head = 0;
  #at = 0;
  #posted = 0;
  #running = false;
  #closing = false;
  #report = new Report();
  readonly #succeed = (value: unknown) => this.#report.succeed(value);
  readonly #succeedChunk = (out: unknown[]) => this.#report.succeedChunk(out);
  readonly #fail = (error: unknown) => this.#report.fail(error);

  constructor(port: MessagePort, cells: WorkerCells, maxtasks: number) {
    this.#port = port;
    this.#cells = cells;
    this.#maxtasks = maxtasks;
    this.finished = this.#done.promise;
    port.onmessage = (event: MessageEvent) => {
      this.#accept(event.data);
      if (!this.#running) void this.#serve();
    };
  }

  #accept(message: ToWorker): void {
    if (message.kind === "close") return void (this.#closing = true);
    for (const [id, spec] of message.functions ?? []) {
      const resolving = resolveTarget(spec);
      resolving.then((fn) => this.#fns.set(id, fn), () => {});
      this.#fns.set(id, resolving);
    }
    append(this.#heads, message.tasks);
    append(this.#datas, message.data);
  }

  #flush(): void {
    if (this.#report.post(this.#port)) this.#cells.markPosted(++this.#posted);
  }

  async #serve(): Promise<void> {
    this.#running = true;
    // A batch accepted while `running` (by onmessage: on Deno a message event can be dispatched between two
    // microtasks, after work() has found nothing left and before this loop resumes) is served here: nothing
    // else will, as onmessage only starts serve() when it is not running.
    do await this.#work(); while (
      this.seq !== this.#maxtasks &&
      (this.#head < this.#heads.length || (!this.#closing && receiveNow !== undefined && this.#awaitWork()))
    );
    this.#running = false;
    if (this.seq === this.#maxtasks || (this.#closing && this.#head === this.#heads.length)) {
      this.#port.close();
      this.#done.resolve();
    }
  }

  /** Runs the queued tasks in order, reporting results at least every FLUSH_MS. */
  async #work(): Promise<void> {
    this.#report.since = performance.now();
    while (this.#head < this.#heads.length) {
      const code = this.#heads[this.#head];
      const count = this.#heads[this.#head + 1];
      const from = this.#at;
      this.#head += 2;
      this.#at += count;
      const seq = ++this.seq;
      if (!this.#cells.claim(seq)) this.#report.results.push(undefined);
      else {
        const pending = this.#run(code, from, count);
        if (pending) await pending;
        const report = this.#report;
        if (this.#cells.finish(seq, report.results[report.results.length - 1], report.lastTravels())) this.#flush();
      }
      this.#datas.fill(undefined, from, this.#at);
      if (seq === this.#maxtasks) break;
      if (performance.now() - this.#report.since >= FLUSH_MS) this.#flush();
    }
    this.#flush();
    if (this.#head === this.#heads.length) (this.#heads = [], this.#datas = [], this.#head = this.#at = 0);
  }

  /** Runs one task whose data starts at `#datas[from]`; returns a Promise only when the task is asynchronous. */
  #run(code: number, from: number, count: number): Promise<void> | void {
    const fn = this.#fns.get(codeFunction(code));
    if (typeof fn !== "function") return fn!.then(() => this.#run(code, from, count), this.#fail);
    const datas = this.#datas;
    try {
      const mode = codeMode(code);
      if (mode === APPLY) {
        // Most tasks take a few plain arguments: call without building an array.
        const result = codeReduced(code)
          ? fn(...load(datas.slice(from, from + count), true) as unknown[])
          : count === 1
          ? fn(datas[from])
          : count === 0
          ? fn()
          : count === 2
          ? fn(datas[from], datas[from + 1])
          : fn(...datas.slice(from, from + count));
        if (isThenable(result)) return Promise.resolve(result).then(this.#succeed, this.#fail);
        return this.#report.succeed(result);
      }
      const items = (codeReduced(code) ? load(datas[from], true) : datas[from]) as unknown[];
      const n = items.length;
      // Results go straight into the Float64Array they travel in while they are numbers, as a map's mostly are:
      // an array first, then a check and a copy, took a worker 2.6 times as long on Node (1.5 on Deno, 2.7 on Bun).
      let numbers = n >= NUMERIC_CHUNK ? new Float64Array(n) : undefined;
      let out: unknown[] | undefined = numbers ? undefined : new Array(n);
      for (let i = 0; i < n; i++) {
        const result = mode === MAP ? fn(items[i]) : fn(...(items[i] as unknown[]));
        if (numbers && typeof result === "number") {
          numbers[i] = result;
          continue;
        }
        if (numbers) (out = spill(numbers, i), numbers = undefined);
        if (isThenable(result)) {
          return finishChunk(fn, mode === MAP, items, out!, i, result).then(this.#succeedChunk, this.#fail);
        }
        out![i] = result;
      }
      if (numbers) this.#report.succeedNumbers(numbers);
      else this.#report.succeedChunk(out!);
    } catch (error) {
      this.#report.fail(error);
    }
  }

  /**
   * Where the runtime can take a message without the event loop, an idle
   * worker waits for the next batch (the pool rings the bell with each
   * batch): first polling for IDLE_POLL_MS, then in Atomics.wait, for up to
   * IDLE_WAIT_MS in all before it goes back to its event loop. The poll
   * catches a caller that awaits one task at a time: measured on this 2-core
   * VM, a task's round trip went from ~60 to ~25 µs on Node and Bun, as
   * waking a sleeping core costs most of it.
   */
  #awaitWork(): boolean {
    const end = performance.now() + IDLE_WAIT_MS;
    const cells = this.#cells;
    for (;;) {
      const bell = cells.bell();
      for (let got = receiveNow!(this.#port); got; got = receiveNow!(this.#port)) {
        this.#accept(got.message as RunMessage);
      }
      if (this.#head < this.#heads.length || this.#closing) return true;
      const left = end - performance.now();
      if (left <= 0) return false;
      if (pollUntil(() => cells.rang(bell), IDLE_POLL_MS)) continue;
      cells.sleep(bell, left);
    }
  }
}

/** The rest of a chunk after its item `at` returned a promise (`first`): item by item, in order. */
async function finishChunk(
  fn: Callable,
  map: boolean,
  items: unknown[],
  out: unknown[],
  at: number,
  first: unknown,
): Promise<unknown[]> {
  out[at] = await first;
  for (let i = at + 1; i < items.length; i++) out[i] = await (map ? fn(items[i]) : fn(...(items[i] as unknown[])));
  return out;
}

/** The first `count` results of a chunk, kept as numbers so far, as the array the rest of the chunk goes on in. */
function spill(numbers: Float64Array, count: number): unknown[] {
  const out = new Array(numbers.length);
  for (let i = 0; i < count; i++) out[i] = numbers[i];
  return out;
}

function append<T>(target: T[], source: readonly T[]): void {
  for (let i = 0; i < source.length; i++) target.push(source[i]);
}
