/**
 * `Condition`, as Python's `multiprocessing.Condition`: waiters release the
 * lock, sleep until notified, and take the lock back before they return.
 *
 * `notify(n)` hands out at most n tickets, one per waiter; a waiter leaves
 * only with a ticket or at its timeout, so exactly n waiters wake. Waiters and
 * tickets share one Int32 (waiters in the high half, tickets in the low one),
 * so that taking a ticket and leaving are each a single compare-and-swap and
 * no ticket is left behind by a waiter that timed out.
 *
 * A ticket is only for the waiters that were already waiting when it was
 * handed out: each waiter notes the notify count when it starts, and takes a
 * ticket only once a later notify came. Without that, the notifier of a
 * `notify(); wait()` ping-pong (mp_benchmarks.py does one) took back the
 * ticket it had just given, and the other side slept until its timeout.
 * Python's `notify` gets the same by waiting until the woken have taken their
 * wake-ups; here `notify` never blocks, so the main thread may call it.
 *
 * Every change of the queue and the notify count is a commit of `fence.ts`:
 * a process reported ended (on Deno a terminated thread may go on running,
 * and one blocked in a wait wakes up) joins no queue, takes no ticket meant
 * for a live waiter and notifies nobody.
 *
 * @module
 */
import { awaitPlan, blockOnPlan, type Plan, unabortable } from "./blocking.ts";
import { beginCommit, endCommit } from "./fence.ts";
import { RLock } from "./locks.ts";
import {
  type AcquireOptions,
  heldDepth,
  isOwnedLock,
  type LockGuard,
  releaseFully,
  restoreDepth,
  type SemLock,
  takePlan,
} from "./semlock.ts";
import { dump, load, reduce, type Reduction, registerKind } from "./reduction.ts";
import { adopted, reviving } from "./revival.ts";
import { assertMayBlock, deadline, readWait, remaining, type Wait, type WaitOptions } from "./wait.ts";

const QUEUE = 0; // waiters << 16 | tickets
const SEQ = 1; // bumped by every notify: what sleeping waiters watch
const WAITER = 1 << 16;
const TICKETS = 0xffff;
const FOREVER: Wait = { timeout: Infinity };

interface State {
  cells: SharedArrayBuffer;
  lock: unknown;
}

/** Takes a ticket if one is there: leaves the queue as a notified waiter. */
function takeTicket(cells: Int32Array): boolean {
  for (;;) {
    const queue = Atomics.load(cells, QUEUE);
    if ((queue & TICKETS) === 0) return false;
    beginCommit();
    const taken = Atomics.compareExchange(cells, QUEUE, queue, queue - WAITER - 1) === queue;
    endCommit();
    if (taken) return true;
  }
}

/**
 * Leaves the queue. A waiter that a notify was for and that times out takes a
 * ticket if one is left (it was notified, as the timeout came); one that is
 * aborted takes one only when every waiter left is owed one, so that a ticket
 * goes to a waiter that will use it and none is left over.
 */
function leave(cells: Int32Array, notified: boolean, aborted: boolean): boolean {
  for (;;) {
    const queue = Atomics.load(cells, QUEUE);
    const tickets = queue & TICKETS;
    const take = notified && (aborted ? tickets >= queue >>> 16 : tickets > 0);
    beginCommit();
    const left = Atomics.compareExchange(cells, QUEUE, queue, queue - WAITER - (take ? 1 : 0)) === queue;
    endCommit();
    if (left) return take;
  }
}

/**
 * A condition variable that every process holding it can wait on and notify.
 * Its lock is an {@linkcode RLock} unless one is given (a `Lock` or `RLock`).
 *
 * @example
 * ```ts
 * import { Condition } from "@mp/multiprocessing";
 * const ready = new Condition();
 * await ready.acquire();
 * try {
 *   console.log(await ready.wait(10)); // false: nobody notified within 10 ms
 * } finally {
 *   ready.release();
 * }
 * ```
 */
export class Condition {
  #cells: Int32Array;
  #lock: SemLock;

  /** A condition on `lock` (a `Lock` or `RLock`), or on a new `RLock`. */
  constructor(lock?: SemLock) {
    const given = adopted<State>();
    if (given) {
      this.#cells = new Int32Array(given.cells);
      this.#lock = load(given.lock, true) as SemLock;
      return;
    }
    if (lock !== undefined && !isOwnedLock(lock)) {
      throw new TypeError("new Condition(lock): lock must be a Lock or an RLock");
    }
    this.#cells = new Int32Array(new SharedArrayBuffer(8));
    this.#lock = lock ?? new RLock();
  }

  /**
   * Acquires the underlying lock.
   *
   * @example
   * ```ts
   * import { Condition } from "@mp/multiprocessing";
   * const c = new Condition();
   * await c.acquire();
   * c.release();
   * ```
   */
  acquire(options?: AcquireOptions): Promise<boolean> {
    return this.#lock.acquire(options);
  }

  /**
   * Acquires the underlying lock, blocking this worker thread.
   *
   * @example
   * ```ts
   * import { Condition } from "@mp/multiprocessing";
   * export function work(c: Condition) {
   *   c.acquireSync();
   *   c.release();
   * }
   * ```
   */
  acquireSync(options?: AcquireOptions): boolean {
    return this.#lock.acquireSync(options);
  }

  /**
   * Releases the underlying lock.
   *
   * @example
   * ```ts
   * import { Condition } from "@mp/multiprocessing";
   * const c = new Condition();
   * await c.acquire();
   * c.release();
   * ```
   */
  release(): void {
    this.#lock.release();
  }

  /**
   * Acquires the underlying lock for a `using` block.
   *
   * @example
   * ```ts
   * import { Condition } from "@mp/multiprocessing";
   * const c = new Condition();
   * {
   *   using _held = await c.guard();
   *   c.notifyAll();
   * }
   * ```
   */
  guard(options?: AcquireOptions): Promise<LockGuard> {
    return this.#lock.guard(options);
  }

  /**
   * Acquires the underlying lock for a `using` block, blocking this worker thread.
   *
   * @example
   * ```ts
   * import { Condition } from "@mp/multiprocessing";
   * export function work(c: Condition) {
   *   using _held = c.guardSync();
   *   c.notify();
   * }
   * ```
   */
  guardSync(options?: AcquireOptions): LockGuard {
    return this.#lock.guardSync(options);
  }

  #depth(what: string): number {
    const depth = heldDepth(this.#lock);
    if (depth === 0) throw new Error(`Condition.${what}: this process must hold the condition's lock`);
    return depth;
  }

  /** Registers as a waiter, releases the lock, sleeps until a ticket or the timeout, takes the lock back. */
  *#waitPlan(wait: Wait, depth: number): Plan<boolean> {
    const cells = this.#cells;
    // Both under the lock, as every notify is: the tickets out now are for the waiters before us.
    beginCommit();
    Atomics.add(cells, QUEUE, WAITER);
    endCommit();
    const joined = Atomics.load(cells, SEQ);
    releaseFully(this.#lock);
    let queued = true;
    try {
      const end = deadline(wait.timeout);
      for (;;) {
        const seq = Atomics.load(cells, SEQ);
        if (seq !== joined && takeTicket(cells)) {
          queued = false;
          return true;
        }
        const left = remaining(end);
        if (left === 0) {
          queued = false;
          return leave(cells, Atomics.load(cells, SEQ) !== joined, false);
        }
        yield { cell: cells, index: SEQ, value: seq, timeout: left };
      }
    } finally {
      // Reached by return and by an abort thrown in at the yield: either way the caller gets the lock back.
      if (queued) leave(cells, Atomics.load(cells, SEQ) !== joined, true);
      yield* unabortable(takePlan(this.#lock, FOREVER));
      restoreDepth(this.#lock, depth);
    }
  }

  *#waitForPlan<T>(predicate: () => T, wait: Wait, depth: number): Plan<T> {
    let result = predicate();
    const end = deadline(wait.timeout);
    while (!result) {
      const left = remaining(end);
      if (left === 0) break;
      yield* this.#waitPlan({ timeout: left, signal: wait.signal }, depth);
      result = predicate();
    }
    return result;
  }

  /**
   * Releases the lock, waits until notified or until `timeout` ms pass, then
   * takes the lock back. Resolves `true` when notified, `false` on timeout.
   *
   * @throws {Error} when this process does not hold the lock.
   * @throws {RangeError} for a NaN or negative timeout.
   *
   * @example
   * ```ts
   * import { Condition } from "@mp/multiprocessing";
   * const c = new Condition();
   * using _held = await c.guard();
   * console.log(await c.wait(5)); // false
   * ```
   */
  async wait(timeout?: WaitOptions): Promise<boolean> {
    const wait = readWait(timeout, "Condition.wait");
    wait.signal?.throwIfAborted();
    return await awaitPlan(this.#waitPlan(wait, this.#depth("wait")), wait.signal);
  }

  /**
   * `wait`, blocking this worker thread.
   *
   * @example
   * ```ts
   * import { Condition } from "@mp/multiprocessing";
   * export function consumer(c: Condition) {
   *   using _held = c.guardSync();
   *   c.waitSync(1000);
   * }
   * ```
   */
  waitSync(timeout?: WaitOptions): boolean {
    assertMayBlock("Condition.waitSync");
    const wait = readWait(timeout, "Condition.waitSync");
    return blockOnPlan(this.#waitPlan(wait, this.#depth("waitSync")), "Condition.waitSync");
  }

  /**
   * Waits until `predicate()` is truthy, re-checking after each notify, and
   * resolves its last result (falsy when `timeout` ms passed first).
   *
   * @example
   * ```ts
   * import { Condition, Value } from "@mp/multiprocessing";
   * const c = new Condition();
   * const n = new Value("i", 1);
   * using _held = await c.guard();
   * console.log(await c.waitFor(() => n.value > 0, 100)); // true
   * ```
   */
  async waitFor<T>(predicate: () => T, timeout?: WaitOptions): Promise<T> {
    const wait = readWait(timeout, "Condition.waitFor");
    wait.signal?.throwIfAborted();
    return await awaitPlan(this.#waitForPlan(predicate, wait, this.#depth("waitFor")), wait.signal);
  }

  /**
   * `waitFor`, blocking this worker thread.
   *
   * @example
   * ```ts
   * import { Condition, Value } from "@mp/multiprocessing";
   * export function consumer(c: Condition, n: Value) {
   *   using _held = c.guardSync();
   *   c.waitForSync(() => n.value > 0);
   * }
   * ```
   */
  waitForSync<T>(predicate: () => T, timeout?: WaitOptions): T {
    assertMayBlock("Condition.waitForSync");
    const wait = readWait(timeout, "Condition.waitForSync");
    return blockOnPlan(this.#waitForPlan(predicate, wait, this.#depth("waitForSync")), "Condition.waitForSync");
  }

  /**
   * Wakes up to `n` waiting processes (they return once they get the lock).
   *
   * @throws {Error} when this process does not hold the lock.
   *
   * @example
   * ```ts
   * import { Condition } from "@mp/multiprocessing";
   * const c = new Condition();
   * using _held = await c.guard();
   * c.notify(2);
   * ```
   */
  notify(n = 1): void {
    if (typeof n !== "number" || Number.isNaN(n) || n < 0) {
      throw new RangeError(`Condition.notify(n): n must be a number >= 0, got ${String(n)}`);
    }
    this.#depth(n === Infinity ? "notifyAll" : "notify");
    const cells = this.#cells;
    for (;;) {
      const queue = Atomics.load(cells, QUEUE);
      const waiters = queue >>> 16;
      const tickets = Math.min((queue & TICKETS) + n, waiters);
      if (tickets === (queue & TICKETS)) return;
      // The tickets and the count that wakes their waiters in one commit: a notify is whole or not made.
      beginCommit();
      const given = Atomics.compareExchange(cells, QUEUE, queue, (waiters << 16) | tickets) === queue;
      if (given) Atomics.add(cells, SEQ, 1);
      endCommit();
      if (given) break;
    }
    Atomics.notify(cells, SEQ);
  }

  /**
   * Wakes every waiting process.
   *
   * @example
   * ```ts
   * import { Condition } from "@mp/multiprocessing";
   * const c = new Condition();
   * using _held = await c.guard();
   * c.notifyAll();
   * ```
   */
  notifyAll(): void {
    this.notify(Infinity);
  }

  /**
   * Sends the shared cells and the lock.
   *
   * @ignore
   */
  [reduce](): Reduction {
    const state: State = { cells: this.#cells.buffer as SharedArrayBuffer, lock: dump(this.#lock, "lock").data };
    return { kind: "@mp/Condition", state };
  }

  /** Shows the lock and how many wait, as Python's repr does. */
  toString(): string {
    return `<Condition(${this.#lock}, ${Atomics.load(this.#cells, QUEUE) >>> 16})>`;
  }
}

registerKind("@mp/Condition", (state) => reviving(state, () => new Condition()));
