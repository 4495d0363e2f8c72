/**
 * `Event`, as Python's `multiprocessing.Event`: one shared flag that
 * processes wait on until another sets it.
 *
 * `set` and `clear` are commits of `fence.ts`: a process reported ended (on
 * Deno a terminated thread may go on running) changes the flag no more.
 *
 * @module
 */
import { awaitPlan, blockOnPlan, type Plan } from "./blocking.ts";
import { beginCommit, endCommit } from "./fence.ts";
import { reduce, type Reduction, registerKind } from "./reduction.ts";
import { adopted, reviving } from "./revival.ts";
import { assertMayBlock, deadline, readWait, remaining, type Wait, type WaitOptions } from "./wait.ts";

const FLAG = 0;

function* waitSet(cells: Int32Array, wait: Wait): Plan<boolean> {
  const end = deadline(wait.timeout);
  for (;;) {
    if (Atomics.load(cells, FLAG) === 1) return true;
    const left = remaining(end);
    if (left === 0) return false;
    yield { cell: cells, index: FLAG, value: 0, timeout: left };
  }
}

/**
 * A flag that every process holding it can set, clear and wait for.
 *
 * @example
 * ```ts
 * import { Event, Process } from "@mp/multiprocessing";
 *
 * export function starter(go: Event) {
 *   go.set();
 * }
 *
 * if (import.meta.main) {
 *   const go = new Event();
 *   new Process({ target: starter, args: [go] }).start();
 *   console.log(await go.wait(5000)); // true
 * }
 * ```
 */
export class Event {
  #cells: Int32Array;

  constructor() {
    this.#cells = new Int32Array(adopted<SharedArrayBuffer>() ?? new SharedArrayBuffer(4));
  }

  /**
   * Whether the flag is set.
   *
   * @example
   * ```ts
   * import { Event } from "@mp/multiprocessing";
   * console.log(new Event().isSet()); // false
   * ```
   */
  isSet(): boolean {
    return Atomics.load(this.#cells, FLAG) === 1;
  }

  /**
   * Sets the flag and wakes every waiter.
   *
   * @example
   * ```ts
   * import { Event } from "@mp/multiprocessing";
   * const e = new Event();
   * e.set();
   * console.log(e.isSet()); // true
   * ```
   */
  set(): void {
    beginCommit();
    Atomics.store(this.#cells, FLAG, 1);
    endCommit();
    Atomics.notify(this.#cells, FLAG);
  }

  /**
   * Clears the flag; later waits wait again.
   *
   * @example
   * ```ts
   * import { Event } from "@mp/multiprocessing";
   * const e = new Event();
   * e.set();
   * e.clear();
   * console.log(e.isSet()); // false
   * ```
   */
  clear(): void {
    beginCommit();
    Atomics.store(this.#cells, FLAG, 0);
    endCommit();
  }

  /**
   * Waits until the flag is set. Resolves `true`, or `false` when `timeout`
   * ms pass first.
   *
   * @throws {RangeError} for a NaN or negative timeout.
   *
   * @example
   * ```ts
   * import { Event } from "@mp/multiprocessing";
   * console.log(await new Event().wait(10)); // false
   * ```
   */
  async wait(timeout?: WaitOptions): Promise<boolean> {
    const wait = readWait(timeout, "Event.wait");
    wait.signal?.throwIfAborted();
    if (this.isSet()) return true;
    return await awaitPlan(waitSet(this.#cells, wait), wait.signal);
  }

  /**
   * `wait`, blocking this worker thread.
   *
   * @example
   * ```ts
   * import { Event } from "@mp/multiprocessing";
   * export function worker(go: Event) {
   *   if (go.waitSync(1000)) console.log("go");
   * }
   * ```
   */
  waitSync(timeout?: WaitOptions): boolean {
    assertMayBlock("Event.waitSync");
    const wait = readWait(timeout, "Event.waitSync");
    wait.signal?.throwIfAborted();
    return blockOnPlan(waitSet(this.#cells, wait), "Event.waitSync");
  }

  /**
   * Sends the shared flag.
   *
   * @ignore
   */
  [reduce](): Reduction {
    return { kind: "@mp/Event", state: this.#cells.buffer };
  }

  /** Shows whether it is set, as Python's repr does. */
  toString(): string {
    return `<Event(${this.isSet() ? "set" : "unset"})>`;
  }
}

registerKind("@mp/Event", (state) => reviving(state, () => new Event()));
