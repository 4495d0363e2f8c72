/**
 * Every wait of the synchronization primitives is written once, as a plan: a
 * generator that tries its condition and, when it must wait, yields which
 * shared cell to watch and for how long. {@linkcode awaitPlan} runs a plan
 * without blocking (the async methods), {@linkcode blockOnPlan} runs the same
 * plan by blocking the worker thread (the `…Sync` twins), both on the futex of
 * `wait.ts`. So the async and sync forms cannot drift apart.
 *
 * @module
 */
import { type CellWait, waitCell, waitCellSync } from "./wait.ts";

/** One wait that a plan asks for: until `cell[index]` no longer holds `value`, a wake-up, or `timeout` ms. */
export interface CellWaitRequest {
  cell: Int32Array;
  index: number;
  value: number;
  timeout: number;
  /**
   * `false` for a wait that must finish even after an abort, such as taking
   * back a Condition's lock: the abort is delivered when the plan ends.
   */
  abortable?: boolean;
}

/** A wait written as a generator; it receives how each requested wait ended. */
export type Plan<T> = Generator<CellWaitRequest, T, CellWait>;

/**
 * Runs `plan` without blocking the thread. An abort of `signal` is thrown into
 * the plan at the wait it interrupts, so the plan can undo what it started
 * (leave a waiter count, take back a lock) before the rejection.
 */
export async function awaitPlan<T>(plan: Plan<T>, signal?: AbortSignal): Promise<T> {
  let step = plan.next();
  while (!step.done) {
    const { cell, index, value, timeout, abortable } = step.value;
    let outcome: CellWait;
    try {
      outcome = await waitCell(cell, index, value, { timeout, signal: abortable === false ? undefined : signal });
    } catch (error) {
      step = plan.throw(error);
      continue;
    }
    step = plan.next(outcome);
  }
  return step.value;
}

/**
 * Runs `plan` by blocking this worker thread at each wait.
 *
 * @throws {Error} on the main thread, which must not block; `what` names the call.
 */
export function blockOnPlan<T>(plan: Plan<T>, what: string): T {
  let step = plan.next();
  while (!step.done) {
    const { cell, index, value, timeout } = step.value;
    step = plan.next(waitCellSync(cell, index, value, timeout, what));
  }
  return step.value;
}

/** Runs `plan` inside another plan with every wait marked not abortable. */
export function* unabortable<T>(plan: Plan<T>): Plan<T> {
  let step = plan.next();
  while (!step.done) step = plan.next(yield { ...step.value, abortable: false });
  return step.value;
}
