/**
 * The memory each pool worker shares with the pool, and the claim slot that
 * stops a task from running twice: both sides of it are here, the pool's
 * (`queue`, `withdraw`, `outcomeAfterDeath`) and the worker's (`claim`,
 * `finish`).
 *
 * The shared block holds the number of tasks the worker has started, of
 * messages it has posted, whether it is ready, a bell the pool rings with
 * each batch, then a claim slot per task in its window and a Float64 cell
 * per slot. When a worker dies, the pool reads which of its tasks had started
 * (they fail; no task runs twice) and which had not (they go to another
 * worker). A timed-out or aborted task is withdrawn by winning its claim slot
 * before the worker does; when the worker won, the task is running and only
 * killing the worker stops it.
 *
 * Results travel back in batches, so a worker that dies (its task calls
 * `exit()`, runs out of memory, or is killed for its `timeout`) would take
 * the results it had not posted yet with it, and finished tasks would fail
 * as if they had run at the death. So a finished task's result is, before
 * the next task starts, either saved in the slot (a number, a boolean,
 * `null` or `undefined`: the slot says which, a number is in the slot's
 * Float64 cell) or posted at once (any other value): whatever kills the
 * worker, only the task that was running fails.
 *
 * @module
 */

/** The most tasks a worker holds, however tiny they are: the number of claim slots. */
export const MAX_WINDOW = 8192;

/** The counters (Int32 cells) at the start of the block. */
const STARTED = 0;
const POSTED = 1;
const READY = 2;
/** Rung by the pool with each batch, for a worker that waits in Atomics.wait (see `adapter.poolPollsPorts`). */
const BELL = 3;
const COUNTERS = 4;

/** A claim slot's states: not started, running, withdrawn by the pool, or being killed for its limit. */
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

const SLOTS_AT = COUNTERS * Int32Array.BYTES_PER_ELEMENT;
/** The Float64 cells of saved numeric results, one a claim slot, after the slots. */
const NUMBERS_AT = SLOTS_AT + MAX_WINDOW;
const SHARED_BYTES = NUMBERS_AT + MAX_WINDOW * Float64Array.BYTES_PER_ELEMENT;

/** What the pool finds in a task's slot when it withdraws the task or reads it after the worker died. */
export const NOT_SAVED: unique symbol = Symbol("not saved");

/** What withdrawing a task found: not started (withdrawn), running (the worker must be killed), or finished. */
export type Withdrawal =
  | { kind: "withdrawn" }
  | { kind: "running" }
  | { kind: "finished"; value: unknown | typeof NOT_SAVED };

/** The slot state that saves `value`, or SENT when it has to travel in a message. */
function savedState(value: unknown): number {
  if (typeof value === "number") return SAVED_NUMBER;
  if (value === undefined) return SAVED_UNDEFINED;
  if (value === null) return SAVED_NULL;
  if (value === true) return SAVED_TRUE;
  return value === false ? SAVED_FALSE : SENT;
}

/** One worker's shared block, as either side sees it. A task's slot is its number at the worker, modulo the window. */
export class WorkerCells {
  readonly shared: SharedArrayBuffer;
  readonly #control: Int32Array;
  readonly #slots: Uint8Array;
  readonly #numbers: Float64Array;

  /** A new block (the pool's side), or the one the pool sent (the worker's). */
  constructor(shared: SharedArrayBuffer = new SharedArrayBuffer(SHARED_BYTES)) {
    this.shared = shared;
    this.#control = new Int32Array(shared, 0, COUNTERS);
    this.#slots = new Uint8Array(shared, SLOTS_AT, MAX_WINDOW);
    this.#numbers = new Float64Array(shared, NUMBERS_AT, MAX_WINDOW);
  }

  // ---- the worker's side ----

  /** The initializer succeeded. */
  markReady(): void {
    Atomics.store(this.#control, READY, 1);
  }

  /** `n` messages have been posted. */
  markPosted(n: number): void {
    Atomics.store(this.#control, POSTED, n);
  }

  /**
   * Task `seq` starts: counted as started, then claimed unless the pool
   * withdrew it first. Returns whether it may run.
   */
  claim(seq: number): boolean {
    Atomics.store(this.#control, STARTED, seq);
    return Atomics.compareExchange(this.#slots, seq % MAX_WINDOW, QUEUED, CLAIMED) !== CANCELLED;
  }

  /**
   * Task `seq` finished with `value` (`sent`: it travels in a message
   * whatever it is, as an error or a reduced value does). Saves the value
   * in the slot when it can; returns true when the result must be posted
   * now, before the next task can kill the worker (see SENT).
   */
  finish(seq: number, value: unknown, sent: boolean): boolean {
    const slot = seq % MAX_WINDOW;
    const state = sent ? SENT : savedState(value);
    if (state === SAVED_NUMBER) this.#numbers[slot] = value as number;
    // KILLING: the pool is stopping this worker for the task's limit; the task has been answered.
    return Atomics.compareExchange(this.#slots, slot, CLAIMED, state) === CLAIMED && state === SENT;
  }

  /** The bell's current count, to wait on. */
  bell(): number {
    return Atomics.load(this.#control, BELL);
  }

  /** Whether the bell has rung since `seen`. */
  rang(seen: number): boolean {
    return Atomics.load(this.#control, BELL) !== seen;
  }

  /** Sleeps until the bell rings past `seen`, or `ms` pass. */
  sleep(seen: number, ms: number): void {
    Atomics.wait(this.#control, BELL, seen, ms);
  }

  // ---- the pool's side ----

  /** Task `seq` is sent: its slot is free, since no more than MAX_WINDOW are outstanding. */
  queue(seq: number): void {
    Atomics.store(this.#slots, seq % MAX_WINDOW, QUEUED);
  }

  /** Wakes a worker that sleeps for its next batch. */
  ring(): void {
    Atomics.add(this.#control, BELL, 1);
    Atomics.notify(this.#control, BELL);
  }

  started(): number {
    return Atomics.load(this.#control, STARTED);
  }

  posted(): number {
    return Atomics.load(this.#control, POSTED);
  }

  ready(): boolean {
    return Atomics.load(this.#control, READY) !== 0;
  }

  /** Takes task `seq` back before the worker starts it, for an idle worker to run; false once it has started. */
  steal(seq: number): boolean {
    return Atomics.compareExchange(this.#slots, seq % MAX_WINDOW, QUEUED, CANCELLED) === QUEUED;
  }

  /**
   * A task's timeout or signal fired: take its slot before the worker does
   * (withdrawn), or mark it KILLING when it is running (the worker is then
   * killed and does not report it), or find it finished.
   */
  withdraw(seq: number): Withdrawal {
    const slot = seq % MAX_WINDOW;
    let state = Atomics.compareExchange(this.#slots, slot, QUEUED, CANCELLED);
    if (state === CLAIMED) {
      state = Atomics.compareExchange(this.#slots, slot, CLAIMED, KILLING);
      if (state === CLAIMED) return { kind: "running" };
    }
    if (state === QUEUED || state === CANCELLED) return { kind: "withdrawn" };
    // Finished in time: a saved result is read now, a sent one is on its way.
    return { kind: "finished", value: this.#saved(state, slot) };
  }

  /** After the worker ended: task `seq`'s saved result, or NOT_SAVED (it never started, or its result was lost). */
  outcomeAfterDeath(seq: number): unknown | typeof NOT_SAVED {
    if (seq > this.started()) return NOT_SAVED;
    const slot = seq % MAX_WINDOW;
    return this.#saved(Atomics.load(this.#slots, slot), slot);
  }

  #saved(state: number, slot: number): unknown {
    switch (state) {
      case SAVED_NUMBER:
        return this.#numbers[slot];
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
}
