/**
 * `Lock`, `RLock`, `Semaphore` and `BoundedSemaphore`, as Python's
 * `multiprocessing.synchronize`: each a `SemLock` (semlock.ts) of its own
 * flavor, usable from every process that holds it.
 *
 * @module
 */
import { reviving } from "./revival.ts";
import { registerKind } from "./reduction.ts";
import { kindNames, LOCK, RLOCK, SEM_VALUE_MAX, SEMAPHORE, semaphoreValue, SemLock } from "./semlock.ts";

export { AbandonedLockError, type AcquireOptions, HOLDER_CHECK_MS, type LockGuard, SemLock } from "./semlock.ts";

/**
 * A lock that any process holding it may use: one holder at a time. As in
 * Python, any process may release it, and acquiring it twice without a
 * release waits (use {@linkcode RLock} to re-enter).
 *
 * @example
 * ```ts
 * import { Lock, Process } from "@mp/multiprocessing";
 *
 * export function f(lock: Lock, i: number) {
 *   using _held = lock.guardSync();
 *   console.log("hello world", i);
 * }
 *
 * if (import.meta.main) {
 *   const lock = new Lock();
 *   for (let i = 0; i < 10; i++) new Process({ target: f, args: [lock, i] }).start();
 * }
 * ```
 */
export class Lock extends SemLock {
  constructor() {
    super(LOCK, 0, 1, "Lock");
  }
}

/**
 * A re-entrant lock: the process that holds it may acquire it again, and
 * must release it as many times. Another process's `release()` throws.
 * Every async task of one process counts as that process.
 *
 * @example
 * ```ts
 * import { RLock } from "@mp/multiprocessing";
 * const lock = new RLock();
 * await lock.acquire();
 * await lock.acquire();
 * lock.release();
 * lock.release();
 * console.log(lock.locked()); // false
 * ```
 */
export class RLock extends SemLock {
  constructor() {
    super(RLOCK, 0, 1, "RLock");
  }
}

function checkValue(value: number, what: string): number {
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw new TypeError(`${what}: value must be an integer, got ${String(value)}`);
  }
  if (value < 0 || value > SEM_VALUE_MAX) {
    throw new RangeError(`${what}: value must be between 0 and ${SEM_VALUE_MAX}, got ${value}`);
  }
  return value;
}

/**
 * A counter that `acquire` decrements, waiting while it is 0, and `release`
 * increments.
 *
 * @throws {RangeError} for a negative value.
 *
 * @example
 * ```ts
 * import { Semaphore } from "@mp/multiprocessing";
 * const slots = new Semaphore(2);
 * await slots.acquire();
 * console.log(slots.getValue()); // 1
 * slots.release();
 * ```
 */
export class Semaphore extends SemLock {
  /** A semaphore whose value starts at `value` (an integer >= 0). */
  constructor(value = 1) {
    const bounded = new.target === BoundedSemaphore || new.target.prototype instanceof BoundedSemaphore;
    const what = bounded ? "BoundedSemaphore" : "Semaphore";
    const checked = checkValue(value, `new ${what}`);
    super(SEMAPHORE, checked, bounded ? checked : SEM_VALUE_MAX, what);
  }

  /**
   * The current value.
   *
   * @example
   * ```ts
   * import { Semaphore } from "@mp/multiprocessing";
   * console.log(new Semaphore(3).getValue()); // 3
   * ```
   */
  getValue(): number {
    return semaphoreValue(this);
  }
}

/**
 * A {@linkcode Semaphore} whose `release` throws when it would go above the
 * initial value.
 *
 * @example
 * ```ts
 * import { BoundedSemaphore } from "@mp/multiprocessing";
 * const s = new BoundedSemaphore(1);
 * try { s.release(); } catch (e) { console.log((e as Error).message); }
 * ```
 */
export class BoundedSemaphore extends Semaphore {
  /** A semaphore that starts at, and may never go above, `value`. */
  constructor(value = 1) {
    super(value);
  }
}

registerKind(kindNames.Lock, (state) => reviving(state, () => new Lock()));
registerKind(kindNames.RLock, (state) => reviving(state, () => new RLock()));
registerKind(kindNames.Semaphore, (state) => reviving(state, () => new Semaphore()));
registerKind(kindNames.BoundedSemaphore, (state) => reviving(state, () => new BoundedSemaphore()));
