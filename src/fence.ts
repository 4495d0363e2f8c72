/**
 * The fence between a process that has been reported ended and the shared
 * objects of the library.
 *
 * Deno's `terminate()` does not stop a thread that is busy in synchronous
 * code, nor one blocked in `Atomics.wait` (measured on Deno 2.9: a spinning
 * Web Worker, and a `node:worker_threads` one, went on counting for as long
 * as we watched, and the latter fired its `exit` event at once all the
 * same). Yet once a process is reported ended, the others take over what it
 * held: its lock of a ring, its pipe ends. So every write of a child to a
 * shared object of the library is a *commit*, bracketed by
 * {@linkcode beginCommit} and {@linkcode endCommit}:
 *
 * - the child marks itself `COMMITTING`, then reads its `FENCED` cell; if it
 *   is set, it unmarks itself and ends its thread at once (`Deno.exit` does
 *   stop a busy worker), having changed nothing;
 * - the parent, before it reports the child ended, sets `FENCED`, then waits
 *   until `COMMITTING` is clear ({@linkcode commitInFlight}).
 *
 * Both sides store first and load second, and `Atomics` are sequentially
 * consistent: either the child saw the fence, or the parent sees the commit
 * and waits for its end. A commit never waits and never awaits, and Deno's
 * `terminate()` never interrupts synchronous code, so a commit in flight
 * always ends. On Node and Bun the parent learns of the end only once the
 * thread is gone, and then waits for nothing.
 *
 * @module
 */
import { adapter } from "./adapters/mod.ts";

const FENCED = 0;
const COMMITTING = 1;
/** A cache line of its own: a commit writes to it twice, and no other process's cells should share the line. */
const BYTES = 64;

/** The exit code a fenced thread ends with; nobody sees it (its parent has already reported the end). */
const FENCED_EXIT = 143;

/** This thread's own fence: the main thread's is never raised. */
let own = new Int32Array(new SharedArrayBuffer(BYTES));

/**
 * A new fence, for the parent to keep and the child to adopt.
 *
 * @example
 * ```ts
 * import { newFence, raiseFence } from "./fence.ts";
 * const fence = newFence();
 * raiseFence(fence);
 * ```
 */
export function newFence(): Int32Array {
  return new Int32Array(new SharedArrayBuffer(BYTES));
}

/** In a child, at bootstrap: the fence its parent keeps for it. */
export function adoptFence(buffer: SharedArrayBuffer): void {
  own = new Int32Array(buffer);
}

/**
 * Begins a commit: ends this thread at once if its parent has fenced it
 * off. Call {@linkcode endCommit} when the writes are done; nothing between
 * the two may wait, await or throw.
 */
export function beginCommit(): void {
  Atomics.store(own, COMMITTING, 1);
  if (Atomics.load(own, FENCED) !== 0) fenced();
}

/** Ends the commit that {@linkcode beginCommit} began. */
export function endCommit(): void {
  Atomics.store(own, COMMITTING, 0);
}

/** Whether this thread has been fenced off (its next commit ends it). */
export function isFenced(): boolean {
  return Atomics.load(own, FENCED) !== 0;
}

function fenced(): never {
  Atomics.store(own, COMMITTING, 0);
  return adapter.exit(FENCED_EXIT);
}

/** In the parent: no commit of the child begins from now on. */
export function raiseFence(fence: Int32Array): void {
  Atomics.store(fence, FENCED, 1);
}

/** In the parent, after {@linkcode raiseFence}: whether a commit that began before it is still running. */
export function commitInFlight(fence: Int32Array): boolean {
  return Atomics.load(fence, COMMITTING) !== 0;
}
