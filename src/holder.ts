/**
 * Robust holding, the one mechanism behind every lock of the library that
 * outlives its holder (as POSIX's robust mutexes): a shared Int32 cell holds
 * the pid of the process that holds something, 0 when nobody does. Used by
 * `Lock`/`RLock` (locks.ts), a ring's read and write locks (ring.ts) and the
 * table of `SharedMemory` blocks (shared_memory.ts).
 *
 * - A process takes the cell with a compare-and-swap from 0 to its pid
 *   ({@linkcode tryHold}).
 * - A holder that ended holding it (terminated mid-operation) is seen with
 *   {@linkcode holderEnded}; each user decides what that means: a ring or the
 *   table takes it over ({@linkcode takeOver}) and repairs what was left half
 *   done, a `Lock` fails its acquirers with `AbandonedLockError`.
 * - Nobody wakes a waiter when a holder dies, so a waiter re-checks at least
 *   every {@linkcode HOLDER_CHECK_MS} ({@linkcode holderWait}).
 * - A holder frees the cell with a compare-and-swap from its own pid
 *   ({@linkcode letGo}): one whose cell was taken over (it was reported ended,
 *   and on Deno its thread may still run, see fence.ts) must not free the new
 *   holder's.
 *
 * @module
 */
import type { CellWaitRequest } from "./blocking.ts";
import { hasEnded, ownPid } from "./pids.ts";

/** How often a waiter checks whether the process holding what it waits for has ended. */
export const HOLDER_CHECK_MS = 100;

/**
 * This process's pid, which a holder cell records.
 *
 * @example
 * ```ts
 * import { holderPid } from "./holder.ts";
 * console.log(holderPid() > 0); // true
 * ```
 */
export const holderPid: () => number = ownPid;

/**
 * Takes `cells[index]` for `me` if nobody holds it. Returns 0 when it is now
 * `me`'s, else the pid of its holder (which may be `me`).
 *
 * @example
 * ```ts
 * import { holderPid, tryHold } from "./holder.ts";
 * const cells = new Int32Array(new SharedArrayBuffer(4));
 * console.log(tryHold(cells, 0, holderPid())); // 0
 * ```
 */
export function tryHold(cells: Int32Array, index: number, me: number): number {
  return Atomics.compareExchange(cells, index, 0, me);
}

/**
 * Whether `holder` (a pid read from a holder cell, 0 for none) is a process
 * that has ended.
 *
 * @example
 * ```ts
 * import { holderEnded } from "./holder.ts";
 * console.log(holderEnded(0)); // false
 * ```
 */
export function holderEnded(holder: number): boolean {
  return holder !== 0 && hasEnded(holder);
}

/**
 * Takes `cells[index]` over from `holder` if that process has ended and no
 * other process took it over first. Returns whether `me` holds it now.
 *
 * @example
 * ```ts
 * import { holderPid, takeOver } from "./holder.ts";
 * const cells = new Int32Array(new SharedArrayBuffer(4));
 * console.log(takeOver(cells, 0, 12345, holderPid())); // false: 12345 does not hold it
 * ```
 */
export function takeOver(cells: Int32Array, index: number, holder: number, me: number): boolean {
  return holderEnded(holder) && Atomics.compareExchange(cells, index, holder, me) === holder;
}

/**
 * Frees `cells[index]` if `me` still holds it. Returns whether it did.
 *
 * @example
 * ```ts
 * import { holderPid, letGo, tryHold } from "./holder.ts";
 * const cells = new Int32Array(new SharedArrayBuffer(4));
 * tryHold(cells, 0, holderPid());
 * console.log(letGo(cells, 0, holderPid())); // true
 * ```
 */
export function letGo(cells: Int32Array, index: number, me: number): boolean {
  return Atomics.compareExchange(cells, index, me, 0) === me;
}

/**
 * A plan's wait (blocking.ts) until `cells[index]` no longer holds `holder`,
 * at most `timeout` ms and sliced to {@linkcode HOLDER_CHECK_MS}: a holder
 * that ends wakes nobody, so the waiter must look again.
 *
 * @example
 * ```ts
 * import { holderWait } from "./holder.ts";
 * const cells = new Int32Array(new SharedArrayBuffer(4));
 * console.log(holderWait(cells, 0, 7, Infinity).timeout); // 100
 * ```
 */
export function holderWait(
  cells: Int32Array,
  index: number,
  holder: number,
  timeout: number,
  sleepers?: number,
): CellWaitRequest {
  return { cell: cells, index, value: holder, timeout: Math.min(timeout, HOLDER_CHECK_MS), sleepers };
}
