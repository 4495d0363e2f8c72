/**
 * How the manager's two sides poll: a short spin before parking pays only
 * while the other side runs on another core at that moment. On this 2-core
 * machine shared by other sessions (load 4–17) it mostly does not: the spin
 * ran out, then the thread parked anyway, and the spinning took the core the
 * other side needed. Measured (Node, 2,000 dict set+get pairs from a child,
 * load 4–6): spinning every time 1.1–1.6k pairs/s, never spinning 5–12k,
 * while the same spin on an idle machine made 49–59k (README, 25 November).
 * So a side spins only while spinning pays off.
 *
 * @module
 */
import { pollUntil } from "../wait.ts";

/** The most waits skipped between two tries of a spin that keeps coming up empty. */
const MOST_SKIPPED = 64;

/**
 * A spin of `ms` milliseconds that backs off: after a spin that came up
 * empty, the next 1, 2, 4, … (at most 64) waits skip it, and one that
 * succeeds makes every wait spin again. On a busy machine about one wait in
 * 65 spins for nothing; on an idle one every wait spins, as before.
 *
 * @example
 * ```ts
 * const poller = new Poller(0.2);
 * const cell = new Int32Array(new SharedArrayBuffer(4));
 * if (!poller.poll(() => Atomics.load(cell, 0) !== 0)) {
 *   // park the thread (or await a wake-up) instead
 * }
 * ```
 */
export class Poller {
  readonly ms: number;
  #skip = 0;
  #skipped = 0;

  constructor(ms: number) {
    this.ms = ms;
  }

  /** Whether `done()` holds: after a spin of up to `ms`, or at once while spins are being skipped. */
  poll(done: () => boolean): boolean {
    if (this.#skipped < this.#skip) {
      this.#skipped++;
      return done();
    }
    this.#skipped = 0;
    if (pollUntil(done, this.ms)) {
      this.#skip = 0;
      return true;
    }
    this.#skip = Math.min(Math.max(1, this.#skip * 2), MOST_SKIPPED);
    return false;
  }
}
