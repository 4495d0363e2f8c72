/**
 * `SemLock`, what every lock of `locks.ts` is (Python's
 * `multiprocessing.synchronize.SemLock`): a few shared Int32 cells, taken
 * with `Atomics.compareExchange` and waited on with a plan (blocking.ts), so
 * any process that holds the object can use it without going through the
 * main thread; and the pieces a Condition's wait and a synchronized Value's
 * access take a lock with.
 *
 * A Lock or RLock's state is a holder cell (holder.ts): it records its
 * holder's pid. When the holder ends without releasing it (Python deadlocks
 * here), every acquirer fails with {@linkcode AbandonedLockError} naming that
 * pid, within {@linkcode HOLDER_CHECK_MS} of the holder's parent seeing it
 * end. The parent sees it on its event loop: a parent that is itself blocked
 * in a `…Sync` call cannot, so give such a wait a timeout.
 *
 * Every take and give-back is a commit of `fence.ts`: a process reported
 * ended (on Deno a terminated thread may go on running) takes no lock and
 * frees none that another has since taken.
 *
 * @module
 */
import { TimeoutError } from "./errors.ts";
import { awaitPlan, blockOnPlan, type Plan } from "./blocking.ts";
import { beginCommit, endCommit } from "./fence.ts";
import { HOLDER_CHECK_MS, holderEnded, holderPid, holderWait, tryHold } from "./holder.ts";
import { reduce, type Reduction } from "./reduction.ts";
import { adopted } from "./revival.ts";
import { assertMayBlock, deadline, readWait, remaining, type Wait } from "./wait.ts";

/**
 * How long an acquire may wait: a timeout in ms, `{ timeout, signal }`, or
 * `{ block: false }` to try once (Python's `acquire(block=False)`).
 */
export type AcquireOptions = number | { block?: boolean; timeout?: number; signal?: AbortSignal };

export { HOLDER_CHECK_MS };

/**
 * How many times a waiter re-tries a lock held by another process before it
 * sleeps: critical sections are often shorter than a futex sleep and wake-up.
 * It took two processes sharing a Value counter from 0.65x to over 2x
 * Python's speed (bench/synchronize.ts).
 */
const SPINS = 100;

// The cells of a SemLock.
const STATE = 0; // Lock/RLock: the holder's pid, 0 when free. Semaphore: its value.
const WAITERS = 1; // How many are waiting, so that release() wakes only when someone waits.
const DEPTH = 2; // RLock: how many times its holder has acquired it.
const MAX = 3; // BoundedSemaphore: the highest value release() may reach.
const CELLS = 4;

/** The flavors of a SemLock. */
export const LOCK = 0;
export const RLOCK = 1;
export const SEMAPHORE = 2;
type Flavor = typeof LOCK | typeof RLOCK | typeof SEMAPHORE;

/** The highest value of a semaphore. */
export const SEM_VALUE_MAX = 0x7fffffff;
const FOREVER: Wait = { timeout: Infinity };

/**
 * The process that held a `Lock` or `RLock` ended without releasing it.
 * Python's processes deadlock here; this library fails every acquirer with
 * this error instead. A `Lock` (which any process may release, as in Python)
 * can be recovered with `release()`; an abandoned `RLock` cannot.
 *
 * @example
 * ```ts
 * import { AbandonedLockError } from "@mp/multiprocessing";
 * const e = new AbandonedLockError("Lock", 1234);
 * console.log(e.holder); // 1234
 * ```
 */
export class AbandonedLockError extends Error {
  /** Always `"AbandonedLockError"`. */
  override name: string = "AbandonedLockError";
  /** The pid of the process that ended while it held the lock. */
  readonly holder: number;
  /** `what` is the kind of lock ("Lock" or "RLock"), `holder` the pid of the process that ended. */
  constructor(what: string, holder: number) {
    super(
      `the ${what} is held by process ${holder}, which ended without releasing it` +
        (what === "Lock" ? "; release() it to reuse it, or create a new one" : "; create a new one"),
    );
    this.holder = holder;
  }
}

/** Reads {@linkcode AcquireOptions}; `{ block: false }` is a timeout of 0. */
function readAcquire(options: AcquireOptions | undefined, what: string): Wait {
  if (typeof options === "object" && options !== null && options.block === false) {
    return { timeout: 0, signal: options.signal };
  }
  return readWait(options as number | { timeout?: number; signal?: AbortSignal } | undefined, what);
}

/** Waits until the Lock or RLock in `cells` can be taken by `pid`. */
function* takeOwned(cells: Int32Array, pid: number, reentrant: boolean, wait: Wait, what: string): Plan<boolean> {
  const end = deadline(wait.timeout);
  Atomics.add(cells, WAITERS, 1);
  let spins = 0;
  try {
    for (;;) {
      beginCommit();
      const holder = tryHold(cells, STATE, pid);
      const taken = holder === 0 || (reentrant && holder === pid);
      if (taken && reentrant) cells[DEPTH] = holder === 0 ? 1 : cells[DEPTH] + 1;
      endCommit();
      if (taken) return true;
      // A holder on this very thread cannot release while we spin.
      if (holder !== pid && spins++ < SPINS) continue;
      if (holderEnded(holder)) throw new AbandonedLockError(what, holder);
      const left = remaining(end);
      if (left === 0) return false;
      // Sliced, so that a holder that ends is noticed even though nobody wakes us.
      yield holderWait(cells, STATE, holder, left);
    }
  } finally {
    Atomics.sub(cells, WAITERS, 1);
  }
}

/** Waits until the semaphore in `cells` is above zero, and decrements it. */
function* takeCount(cells: Int32Array, wait: Wait): Plan<boolean> {
  const end = deadline(wait.timeout);
  Atomics.add(cells, WAITERS, 1);
  try {
    for (;;) {
      const value = Atomics.load(cells, STATE);
      if (value > 0) {
        beginCommit();
        const taken = Atomics.compareExchange(cells, STATE, value, value - 1) === value;
        endCommit();
        if (taken) return true;
        continue;
      }
      const left = remaining(end);
      if (left === 0) return false;
      yield { cell: cells, index: STATE, value: 0, timeout: left };
    }
  } finally {
    Atomics.sub(cells, WAITERS, 1);
  }
}

/** A lock's guard: `using held = await lock.guard()` releases it at the end of the block. */
export interface LockGuard extends Disposable {
  /** Releases the lock now; the end of the block then does nothing. */
  release(): void;
}

let cellsOf: (lock: SemLock) => Int32Array;
let flavorOf: (lock: SemLock) => Flavor;

/**
 * What `Lock`, `RLock`, `Semaphore` and `BoundedSemaphore` share (Python's
 * `SemLock`): a value in shared memory that `acquire` takes and `release`
 * gives back, usable from every process that holds the object.
 *
 * @example
 * ```ts
 * import { Lock, SemLock } from "@mp/multiprocessing";
 * console.log(new Lock() instanceof SemLock); // true
 * ```
 */
export class SemLock {
  #cells: Int32Array;
  #flavor: Flavor;
  #what: string;
  #syncWhat: string;

  static {
    cellsOf = (lock) => lock.#cells;
    flavorOf = (lock) => lock.#flavor;
  }

  /** Use a subclass: `new Lock()`, `new RLock()`, `new Semaphore(n)`, `new BoundedSemaphore(n)`. */
  protected constructor(flavor: number, value: number, max: number, what: string) {
    const given = adopted<SharedArrayBuffer>();
    this.#cells = new Int32Array(given ?? new SharedArrayBuffer(CELLS * 4));
    this.#flavor = flavor as Flavor;
    this.#what = what;
    this.#syncWhat = `${what}.acquireSync`;
    if (!given) {
      this.#cells[STATE] = value;
      this.#cells[MAX] = max;
    }
  }

  /** Takes it now if it is free; the fast path of both acquire forms. */
  #tryTake(): boolean {
    beginCommit();
    const taken = this.#takeNow();
    endCommit();
    return taken;
  }

  #takeNow(): boolean {
    const cells = this.#cells;
    if (this.#flavor === SEMAPHORE) {
      const value = Atomics.load(cells, STATE);
      return value > 0 && Atomics.compareExchange(cells, STATE, value, value - 1) === value;
    }
    const pid = holderPid();
    if (tryHold(cells, STATE, pid) === 0) {
      if (this.#flavor === RLOCK) cells[DEPTH] = 1;
      return true;
    }
    if (this.#flavor === RLOCK && Atomics.load(cells, STATE) === pid) {
      cells[DEPTH]++;
      return true;
    }
    return false;
  }

  #plan(wait: Wait): Plan<boolean> {
    return takePlan(this, wait);
  }

  /**
   * Waits until it can be taken, and takes it. Resolves `true`, or `false`
   * when `timeout` ms pass first (or at once with `{ block: false }`).
   *
   * @throws {RangeError} for a NaN or negative timeout.
   * @throws {AbandonedLockError} when a Lock's or RLock's holder ended without releasing it.
   *
   * @example
   * ```ts
   * import { Lock } from "@mp/multiprocessing";
   * const lock = new Lock();
   * if (await lock.acquire({ timeout: 100 })) {
   *   try { console.log("mine"); } finally { lock.release(); }
   * }
   * ```
   */
  acquire(options?: AcquireOptions): Promise<boolean> {
    let wait = FOREVER;
    try {
      if (options !== undefined) wait = readAcquire(options, `${this.#what}.acquire`);
      wait.signal?.throwIfAborted();
      if (this.#tryTake()) return Promise.resolve(true);
    } catch (error) {
      return Promise.reject(error);
    }
    return awaitPlan(this.#plan(wait), wait.signal);
  }

  /**
   * `acquire`, blocking this worker thread instead of returning a Promise.
   *
   * @throws {Error} on the main thread, which must not block.
   *
   * @example
   * ```ts
   * import { Lock } from "@mp/multiprocessing";
   *
   * export function work(lock: Lock) {
   *   lock.acquireSync();
   *   try { console.log("in the critical section"); } finally { lock.release(); }
   * }
   * ```
   */
  acquireSync(options?: AcquireOptions): boolean {
    const what = this.#syncWhat;
    assertMayBlock(what);
    if (options === undefined) {
      // Spinning here first spares a short wait the cost of setting up a plan.
      for (let i = 0; i <= SPINS; i++) if (this.#tryTake()) return true;
      return blockOnPlan(this.#plan(FOREVER), what);
    }
    const wait = readAcquire(options, what);
    wait.signal?.throwIfAborted();
    if (this.#tryTake()) return true;
    return blockOnPlan(this.#plan(wait), what);
  }

  /**
   * Gives it back, waking one waiter.
   *
   * @throws {Error} for a Lock that is not locked, an RLock this process does
   * not hold, or a BoundedSemaphore already at its initial value.
   *
   * @example
   * ```ts
   * import { Semaphore } from "@mp/multiprocessing";
   * const slots = new Semaphore(2);
   * await slots.acquire();
   * slots.release();
   * ```
   */
  release(): void {
    beginCommit();
    try {
      this.#giveBack();
    } finally {
      endCommit();
    }
  }

  #giveBack(): void {
    const cells = this.#cells;
    if (this.#flavor === SEMAPHORE) {
      for (;;) {
        const value = Atomics.load(cells, STATE);
        const max = cells[MAX];
        if (value >= max) {
          throw new Error(
            max === SEM_VALUE_MAX
              ? `${this.#what}.release(): the value cannot go above ${SEM_VALUE_MAX}`
              : `${this.#what} released too many times: its value is already ${max}, its initial value`,
          );
        }
        if (Atomics.compareExchange(cells, STATE, value, value + 1) === value) break;
      }
    } else if (this.#flavor === RLOCK) {
      if (Atomics.load(cells, STATE) !== holderPid()) {
        throw new Error("cannot release an RLock that this process does not hold");
      }
      if (--cells[DEPTH] > 0) return;
      Atomics.store(cells, STATE, 0);
    } else if (Atomics.exchange(cells, STATE, 0) === 0) {
      throw new Error("cannot release a Lock that is not locked");
    }
    if (Atomics.load(cells, WAITERS) > 0) Atomics.notify(cells, STATE, 1);
  }

  /**
   * Whether it is taken: a Lock or RLock held by some process, a semaphore at zero.
   *
   * @example
   * ```ts
   * import { Lock } from "@mp/multiprocessing";
   * console.log(new Lock().locked()); // false
   * ```
   */
  locked(): boolean {
    const state = Atomics.load(this.#cells, STATE);
    return this.#flavor === SEMAPHORE ? state === 0 : state !== 0;
  }

  /**
   * Acquires and returns a guard that releases at the end of a `using`
   * block, as Python's `with lock:`.
   *
   * @throws {TimeoutError} when `timeout` ms pass before it could be taken.
   *
   * @example
   * ```ts
   * import { Lock } from "@mp/multiprocessing";
   * const lock = new Lock();
   * {
   *   using _held = await lock.guard();
   *   console.log(lock.locked()); // true
   * }
   * console.log(lock.locked()); // false
   * ```
   */
  async guard(options?: AcquireOptions): Promise<LockGuard> {
    return this.#guarded(await this.acquire(options));
  }

  /**
   * `guard`, blocking this worker thread.
   *
   * @example
   * ```ts
   * import { Lock } from "@mp/multiprocessing";
   *
   * export function work(lock: Lock) {
   *   using _held = lock.guardSync();
   *   console.log("in the critical section");
   * }
   * ```
   */
  guardSync(options?: AcquireOptions): LockGuard {
    return this.#guarded(this.acquireSync(options));
  }

  #guarded(acquired: boolean): LockGuard {
    if (!acquired) throw new TimeoutError(`${this.#what}: could not acquire it within the timeout`);
    let held = true;
    const release = () => {
      if (!held) return;
      held = false;
      this.release();
    };
    return { release, [Symbol.dispose]: release };
  }

  /**
   * Sends the shared cells; the other process gets an object of the same class on them.
   *
   * @ignore
   */
  [reduce](): Reduction {
    return { kind: kindNames[this.#what], state: this.#cells.buffer };
  }

  /** Shows the class and state, as Python's repr does. */
  toString(): string {
    const state = Atomics.load(this.#cells, STATE);
    if (this.#flavor === SEMAPHORE) {
      const max = this.#cells[MAX];
      return `<${this.#what}(value=${state}${max === SEM_VALUE_MAX ? "" : `, maxvalue=${max}`})>`;
    }
    if (state === 0) return `<${this.#what}(owner=None)>`;
    return `<${this.#what}(owner=${state}${this.#flavor === RLOCK ? `, count=${this.#cells[DEPTH]}` : ""})>`;
  }
}

/** The kinds (reduction.ts) a lock of each class travels as. */
export const kindNames: Record<string, string> = {
  Lock: "@mp/Lock",
  RLock: "@mp/RLock",
  Semaphore: "@mp/Semaphore",
  BoundedSemaphore: "@mp/BoundedSemaphore",
};

/** The plan that acquires `lock`: for a Condition's wait, which takes its lock back. */
export function takePlan(lock: SemLock, wait: Wait): Plan<boolean> {
  const cells = cellsOf(lock);
  const flavor = flavorOf(lock);
  if (flavor === SEMAPHORE) return takeCount(cells, wait);
  return takeOwned(cells, holderPid(), flavor === RLOCK, wait, flavor === RLOCK ? "RLock" : "Lock");
}

/** How many times this process holds `lock` (a Lock or RLock): 0 when it does not. */
export function heldDepth(lock: SemLock): number {
  const cells = cellsOf(lock);
  if (Atomics.load(cells, STATE) !== holderPid()) return 0;
  return flavorOf(lock) === RLOCK ? cells[DEPTH] : 1;
}

/** Releases every level this process holds of `lock`, for a Condition's wait. */
export function releaseFully(lock: SemLock): void {
  const cells = cellsOf(lock);
  beginCommit();
  cells[DEPTH] = 0;
  Atomics.store(cells, STATE, 0);
  endCommit();
  if (Atomics.load(cells, WAITERS) > 0) Atomics.notify(cells, STATE, 1);
}

/** After {@linkcode takePlan} took `lock` back: restores the depth it had. */
export function restoreDepth(lock: SemLock, depth: number): void {
  if (flavorOf(lock) !== RLOCK) return;
  beginCommit();
  cellsOf(lock)[DEPTH] = depth;
  endCommit();
}

/** Whether `lock` is a Lock or an RLock, which record their holder. */
export function isOwnedLock(lock: unknown): lock is SemLock {
  return lock instanceof SemLock && flavorOf(lock) !== SEMAPHORE;
}

/** A semaphore's value. */
export function semaphoreValue(lock: SemLock): number {
  return Atomics.load(cellsOf(lock), STATE);
}
