/**
 * `Barrier`, as Python's `threading.Barrier` shared between processes:
 * `parties` waiters meet, the last one runs the action, and all go on.
 *
 * The whole state is one Int32 (arrived count, a broken bit, a generation),
 * changed only by compare-and-swap, so arriving, tripping, breaking and
 * resetting cannot interleave badly. Waiters sleep on a separate signal cell
 * that every trip, break and reset bumps. A reset starts a new generation at
 * once; the generation it ended is marked in a 32-bit history so that its
 * late waiters still see it as broken, not tripped.
 *
 * The action travels to other processes as a process target does (exported
 * from its module, or self-contained source), and runs in whichever process
 * arrives last.
 *
 * Every change of the state, the signal and the history is a commit of
 * `fence.ts`: a process reported ended (on Deno a terminated thread may go
 * on running, and one blocked in a wait wakes up) arrives, trips, breaks and
 * resets no more.
 *
 * @module
 */
import { awaitPlan, blockOnPlan, type Plan } from "./blocking.ts";
import { BrokenBarrierError } from "./errors.ts";
import { beginCommit, endCommit } from "./fence.ts";
import { prepareBeforeRun } from "./lifecycle.ts";
import { reduce, type Reduction, registerKind } from "./reduction.ts";
import { adopted, reviving } from "./revival.ts";
import { callerModule, describeTarget, moduleSpecifier, resolveTarget, type TargetSpec } from "./spawn.ts";
import { assertMayBlock, deadline, readWait, remaining, type WaitOptions } from "./wait.ts";

const STATE = 0;
const SIGNAL = 1;
const HISTORY = 2; // bit (generation % 32) is set when that generation ended broken
const COUNT = 0xffff;
const BROKEN = 1 << 16;
const GEN_SHIFT = 17;
const GEN_MASK = 0x3fff;
const MAX_PARTIES = COUNT - 1;

/** Options of {@linkcode Barrier}. */
export interface BarrierOptions {
  /** Called with no arguments by the last party to arrive, before any party is released. */
  action?: () => unknown;
  /** The timeout (ms) of every `wait` that gives none. */
  timeout?: number;
  /**
   * The module that exports `action` (`import.meta.url`, a URL or a
   * specifier), as for a Process target; by default the module that calls
   * `new Barrier`. Other processes import it to run the action.
   */
  module?: string | URL;
}

interface State {
  cells: SharedArrayBuffer;
  parties: number;
  timeout?: number;
  action?: TargetSpec;
}

const generation = (state: number) => (state >>> GEN_SHIFT) & GEN_MASK;

function breakBarrier(cells: Int32Array): void {
  beginCommit();
  for (;;) {
    const state = Atomics.load(cells, STATE);
    if (state & BROKEN) break;
    if (Atomics.compareExchange(cells, STATE, state, state | BROKEN) === state) break;
  }
  Atomics.add(cells, SIGNAL, 1);
  endCommit();
  Atomics.notify(cells, SIGNAL);
}

/** A party's wait for the signal to move on from `signal`; one that times out breaks the barrier, as in Python. */
function* awaitSignal(cells: Int32Array, signal: number, end: number): Plan<void> {
  const left = remaining(end);
  if (left === 0) {
    breakBarrier(cells);
    throw new BrokenBarrierError("the barrier's wait timed out, which broke it");
  }
  yield { cell: cells, index: SIGNAL, value: signal, timeout: left };
}

/**
 * A meeting point for a fixed number of parties in any processes: each
 * `wait` returns once `parties` of them are waiting.
 *
 * @throws {RangeError} when `parties` is not an integer from 1 to 65534, or the timeout is invalid.
 *
 * @example
 * ```ts
 * import { Barrier, Process } from "@mp/multiprocessing";
 *
 * export function party(b: Barrier) {
 *   console.log("arrived", b.waitSync());
 * }
 *
 * if (import.meta.main) {
 *   const b = new Barrier(3);
 *   const ps = [0, 1].map(() => new Process({ target: party, args: [b] }));
 *   for (const p of ps) p.start();
 *   console.log("main arrived", await b.wait(5000));
 *   for (const p of ps) await p.join();
 * }
 * ```
 */
export class Barrier {
  #cells: Int32Array;
  #parties: number;
  #timeout?: number;
  #spec?: TargetSpec;
  #action?: () => unknown;
  #loading?: Promise<unknown>;

  /** A barrier for `parties` waiters, with an optional action and default timeout. */
  constructor(parties: number, options: BarrierOptions = {}) {
    const given = adopted<State>();
    if (given) {
      this.#cells = new Int32Array(given.cells);
      this.#parties = given.parties;
      this.#timeout = given.timeout;
      this.#spec = given.action;
      if (given.action) {
        this.#loading = resolveTarget(given.action).then((fn) => (this.#action = fn as () => unknown));
        // A failure is reported by the wait that needs the action.
        this.#loading.catch(() => {});
        // So that a child's target can call waitSync() at once.
        prepareBeforeRun(this.#loading);
      }
      return;
    }
    if (typeof parties !== "number" || !Number.isInteger(parties) || parties < 1 || parties > MAX_PARTIES) {
      throw new RangeError(`new Barrier(parties): parties must be an integer from 1 to ${MAX_PARTIES}, got ${parties}`);
    }
    const { action, timeout } = options;
    if (action !== undefined && typeof action !== "function") {
      throw new TypeError("new Barrier: action must be a function");
    }
    if (timeout !== undefined) readWait(timeout, "new Barrier");
    this.#cells = new Int32Array(new SharedArrayBuffer(12));
    this.#parties = parties;
    this.#timeout = timeout;
    this.#action = action;
    const module = moduleSpecifier(options.module, callerModule());
    this.#spec = action && describeTarget(action, module, "new Barrier: action");
  }

  /** How many must wait for the barrier to trip. */
  get parties(): number {
    return this.#parties;
  }

  /** How many wait now. */
  get nWaiting(): number {
    const state = Atomics.load(this.#cells, STATE);
    const count = state & COUNT;
    return state & BROKEN || count >= this.#parties ? 0 : count;
  }

  /** Whether the barrier is broken (aborted, or a wait timed out or its action threw). */
  get broken(): boolean {
    return (Atomics.load(this.#cells, STATE) & BROKEN) !== 0;
  }

  *#plan(timeout: number): Plan<number> {
    const cells = this.#cells;
    const end = deadline(timeout);
    let state: number;
    for (;;) {
      const signal = Atomics.load(cells, SIGNAL);
      state = Atomics.load(cells, STATE);
      if (state & BROKEN) throw new BrokenBarrierError();
      if ((state & COUNT) < this.#parties) {
        beginCommit();
        const arrived = Atomics.compareExchange(cells, STATE, state, state + 1) === state;
        endCommit();
        if (arrived) break;
        continue;
      }
      // The last party is running the action: wait for the next generation.
      yield* awaitSignal(cells, signal, end);
    }
    const index = state & COUNT;
    const gen = generation(state);
    if (index === this.#parties - 1) {
      try {
        this.#action?.();
      } catch (error) {
        breakBarrier(cells);
        throw error;
      }
      const next = (gen + 1) & GEN_MASK;
      beginCommit();
      Atomics.and(cells, HISTORY, ~(1 << (next & 31)));
      const tripped = Atomics.compareExchange(cells, STATE, state + 1, next << GEN_SHIFT) === state + 1;
      if (tripped) Atomics.add(cells, SIGNAL, 1);
      endCommit();
      if (!tripped) throw new BrokenBarrierError("the barrier was aborted while its action ran");
      Atomics.notify(cells, SIGNAL);
      return index;
    }
    for (;;) {
      const signal = Atomics.load(cells, SIGNAL);
      const now = Atomics.load(cells, STATE);
      if (generation(now) !== gen) {
        if (Atomics.load(cells, HISTORY) & (1 << (gen & 31))) throw new BrokenBarrierError("the barrier was reset");
        return index;
      }
      if (now & BROKEN) throw new BrokenBarrierError();
      yield* awaitSignal(cells, signal, end);
    }
  }

  #readTimeout(timeout: WaitOptions | undefined, what: string) {
    return readWait(timeout ?? this.#timeout, what);
  }

  /**
   * Waits until `parties` processes wait, and resolves this one's arrival
   * index, from 0 to `parties - 1` (the last to arrive gets `parties - 1`
   * and runs the action).
   *
   * @throws {BrokenBarrierError} when the barrier is or becomes broken, or
   * `timeout` ms pass (which breaks it for every waiter, as in Python).
   *
   * @example
   * ```ts
   * import { Barrier } from "@mp/multiprocessing";
   * console.log(await new Barrier(1).wait()); // 0
   * ```
   */
  async wait(timeout?: WaitOptions): Promise<number> {
    const wait = this.#readTimeout(timeout, "Barrier.wait");
    wait.signal?.throwIfAborted();
    if (!this.#action && this.#loading) await this.#loading;
    return await awaitPlan(this.#plan(wait.timeout), wait.signal);
  }

  /**
   * `wait`, blocking this worker thread.
   *
   * @example
   * ```ts
   * import { Barrier } from "@mp/multiprocessing";
   * export function party(b: Barrier) {
   *   b.waitSync(1000);
   * }
   * ```
   */
  waitSync(timeout?: WaitOptions): number {
    assertMayBlock("Barrier.waitSync");
    const wait = this.#readTimeout(timeout, "Barrier.waitSync");
    if (this.#spec && !this.#action) {
      throw new Error(
        `Barrier.waitSync: the barrier's action ${this.#spec.name} is still being imported in this process ` +
          "(the barrier did not arrive in a Process's args); await barrier.wait() once first",
      );
    }
    return blockOnPlan(this.#plan(wait.timeout), "Barrier.waitSync");
  }

  /**
   * Breaks the barrier: every waiter, now and later, gets
   * `BrokenBarrierError` until `reset()`.
   *
   * @example
   * ```ts
   * import { Barrier } from "@mp/multiprocessing";
   * const b = new Barrier(2);
   * b.abort();
   * console.log(b.broken); // true
   * ```
   */
  abort(): void {
    breakBarrier(this.#cells);
  }

  /**
   * Returns the barrier to its empty state; the parties waiting now get
   * `BrokenBarrierError`.
   *
   * @example
   * ```ts
   * import { Barrier } from "@mp/multiprocessing";
   * const b = new Barrier(2);
   * b.abort();
   * b.reset();
   * console.log(b.broken); // false
   * ```
   */
  reset(): void {
    const cells = this.#cells;
    breakBarrier(cells);
    const broken = Atomics.load(cells, STATE);
    const gen = generation(broken);
    const next = (gen + 1) & GEN_MASK;
    beginCommit();
    Atomics.or(cells, HISTORY, 1 << (gen & 31));
    Atomics.and(cells, HISTORY, ~(1 << (next & 31)));
    // Fails only when another reset got there first, which did the same.
    const reset = Atomics.compareExchange(cells, STATE, broken, next << GEN_SHIFT) === broken;
    if (reset) Atomics.add(cells, SIGNAL, 1);
    endCommit();
    if (reset) Atomics.notify(cells, SIGNAL);
  }

  /**
   * Sends the shared state, the settings and the action's description.
   *
   * @ignore
   */
  [reduce](): Reduction {
    const state: State = {
      cells: this.#cells.buffer as SharedArrayBuffer,
      parties: this.#parties,
      timeout: this.#timeout,
      action: this.#spec,
    };
    return { kind: "@mp/Barrier", state };
  }

  /** Shows the parties and waiters, as Python's repr does. */
  toString(): string {
    return `<Barrier(parties=${this.#parties}, n_waiting=${this.nWaiting}, broken=${this.broken})>`;
  }
}

registerKind("@mp/Barrier", (state) => reviving(state, () => new Barrier(1)));
