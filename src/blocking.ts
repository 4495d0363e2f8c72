/**
 * The one wait-plan runner: every wait of the library's shared objects (a
 * lock's acquire, a Condition's or Barrier's wait, a queue's put and get, a
 * pipe's recv) is written once, as a plan: a generator that tries its
 * condition and, when it must wait, yields which shared cell to watch and for
 * how long. {@linkcode awaitPlan} runs a plan without blocking (the async
 * methods), {@linkcode blockOnPlan} runs the same plan by blocking the worker
 * thread (the `…Sync` twins) or, where blocking is not allowed, by spinning
 * (the main thread), all on the futex of `wait.ts`. So the async and sync
 * forms cannot drift apart.
 *
 * A plan either keeps its own deadline (a lock's acquire returns `false`
 * when its time is up) or leaves it to the run (`end`): the runner then ends
 * the plan at the first wait that may be cut short once `end` has passed, and
 * returns {@linkcode TIMED_OUT} (a ring's operation, whose steps do not know
 * how long their caller waits).
 *
 * @module
 */
import { type CellWait, pollUntil, remaining, waitCell, waitCellSync } from "./wait.ts";

/** One wait that a plan asks for: until `cell[index]` no longer holds `value`, a wake-up, or `timeout` ms. */
export interface CellWaitRequest {
  cell: Int32Array;
  index: number;
  value: number;
  timeout: number;
  /**
   * `false` for a wait that must finish even after an abort or the run's
   * end, such as taking back a Condition's lock, or a ring's lock held in the
   * middle of a message: an abort is delivered when the plan ends.
   */
  abortable?: boolean;
  /** A cell of `cell` that counts the waiters while they wait, so that wakers can skip `Atomics.notify` when none. */
  sleepers?: number;
}

/** A wait written as a generator; it receives how each requested wait ended. */
export type Plan<T> = Generator<CellWaitRequest, T, CellWait>;

/** What a run returns when its `end` passed before the plan finished. */
export const TIMED_OUT: unique symbol = Symbol("timed out");

/**
 * Runs `plan` without blocking the thread. An abort of `signal` is thrown into
 * the plan at the wait it interrupts, so the plan can undo what it started
 * (leave a waiter count, take back a lock) before the rejection.
 *
 * @example
 * ```ts
 * import { awaitPlan, type Plan } from "./blocking.ts";
 * function* once(): Plan<number> {
 *   return 1;
 * }
 * console.log(await awaitPlan(once())); // 1
 * ```
 */
export function awaitPlan<T>(plan: Plan<T>, signal?: AbortSignal): Promise<T> {
  return awaitPlanUntil(plan, Infinity, signal) as Promise<T>;
}

/**
 * {@linkcode awaitPlan}, ended with {@linkcode TIMED_OUT} at the first
 * abortable wait once `performance.now()` is past `end`.
 *
 * @example
 * ```ts
 * import { awaitPlanUntil, TIMED_OUT } from "./blocking.ts";
 * import { deadline } from "./wait.ts";
 * const cells = new Int32Array(new SharedArrayBuffer(4));
 * function* forever() {
 *   for (;;) yield { cell: cells, index: 0, value: 0, timeout: Infinity };
 * }
 * console.log(await awaitPlanUntil(forever(), deadline(10)) === TIMED_OUT); // true
 * ```
 */
export async function awaitPlanUntil<T>(
  plan: Plan<T>,
  end: number,
  signal?: AbortSignal,
): Promise<T | typeof TIMED_OUT> {
  let step = plan.next();
  while (!step.done) {
    const { cell, index, value, timeout, abortable, sleepers } = step.value;
    const firm = abortable === false;
    const left = firm || end === Infinity ? Infinity : remaining(end);
    if (left === 0) return abandon(plan);
    if (sleepers !== undefined) Atomics.add(cell, sleepers, 1);
    let outcome: CellWait;
    try {
      outcome = await waitCell(cell, index, value, {
        timeout: Math.min(left, timeout),
        signal: firm ? undefined : signal,
      });
    } catch (error) {
      step = plan.throw(error);
      continue;
    } finally {
      if (sleepers !== undefined) Atomics.sub(cell, sleepers, 1);
    }
    step = plan.next(outcome);
  }
  return step.value;
}

/**
 * Runs `plan` by blocking this worker thread at each wait.
 *
 * @throws {Error} on the main thread, which must not block; `what` names the call.
 *
 * @example
 * ```ts
 * import { blockOnPlan, type Plan } from "./blocking.ts";
 * export function inAWorker(): number {
 *   function* once(): Plan<number> {
 *     return 1;
 *   }
 *   return blockOnPlan(once(), "once");
 * }
 * ```
 */
export function blockOnPlan<T>(plan: Plan<T>, what: string): T {
  return blockOnPlanUntil(plan, Infinity, what) as T;
}

/**
 * {@linkcode blockOnPlan}, ended with {@linkcode TIMED_OUT} at the first
 * abortable wait once `end` has passed. With `spin`, each wait polls the cell
 * instead of blocking, for the main thread, which must not block: for waits
 * that the other side ends within microseconds.
 *
 * @throws {Error} on the main thread without `spin`, when the plan must wait.
 *
 * @example
 * ```ts
 * import { blockOnPlanUntil, TIMED_OUT } from "./blocking.ts";
 * import { deadline } from "./wait.ts";
 * const cells = new Int32Array(new SharedArrayBuffer(4));
 * function* forever() {
 *   for (;;) yield { cell: cells, index: 0, value: 0, timeout: Infinity };
 * }
 * console.log(blockOnPlanUntil(forever(), deadline(5), "forever", true) === TIMED_OUT); // true
 * ```
 */
export function blockOnPlanUntil<T>(
  plan: Plan<T>,
  end: number,
  what: string,
  spin = false,
): T | typeof TIMED_OUT {
  let step = plan.next();
  while (!step.done) {
    const { cell, index, value, timeout, abortable, sleepers } = step.value;
    const left = abortable === false || end === Infinity ? Infinity : remaining(end);
    if (left === 0) return abandon(plan);
    const slice = Math.min(left, timeout);
    if (sleepers !== undefined) Atomics.add(cell, sleepers, 1);
    let outcome: CellWait;
    try {
      if (!spin) outcome = waitCellSync(cell, index, value, slice, what);
      else outcome = pollUntil(() => Atomics.load(cell, index) !== value, slice) ? "not-equal" : "timed-out";
    } finally {
      if (sleepers !== undefined) Atomics.sub(cell, sleepers, 1);
    }
    step = plan.next(outcome);
  }
  return step.value;
}

/** Ends a plan whose run ran out of time: its `finally` blocks run, as after a return. */
function abandon<T>(plan: Plan<T>): typeof TIMED_OUT {
  plan.return(undefined as T);
  return TIMED_OUT;
}

/**
 * Runs `plan` inside another plan with every wait marked not abortable.
 *
 * @example
 * ```ts
 * import { type Plan, unabortable } from "./blocking.ts";
 * function* inner(): Plan<number> {
 *   return 1;
 * }
 * function* outer(): Plan<number> {
 *   return yield* unabortable(inner());
 * }
 * ```
 */
export function* unabortable<T>(plan: Plan<T>): Plan<T> {
  let step = plan.next();
  while (!step.done) step = plan.next(yield { ...step.value, abortable: false });
  return step.value;
}
