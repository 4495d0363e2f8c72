/**
 * How long Redis has been gone, for the cluster's Pool and Queue alike: a
 * connection's "close" starts the clock, its "ready" stops it, and after
 * `reconnectTimeout` ms away it runs out, once, until Redis is back. What
 * running out means is the owner's: the pool fails its tasks, the queue
 * rejects its waiting calls and replaces its connection.
 *
 * @module
 */

/**
 * One connection's outage, timed against a limit.
 *
 * @example
 * ```ts
 * import { OutageClock } from "./outage.ts";
 *
 * const clock = new OutageClock(10_000, () => console.log("Redis gone for 10 s"));
 * clock.lost(); // on the connection's "close"
 * if (clock.regained()) console.log("Redis came back after an outage"); // on its "ready"
 * clock.stop(); // when the owner closes
 * ```
 */
export class OutageClock {
  readonly #ms: number;
  readonly #expire: () => void;
  /** When the outage began; undefined while Redis is there. */
  #since: number | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #ranOut = false;

  /** A clock that calls `expire` once an outage has lasted `ms` (a checked reconnectTimeout). */
  constructor(ms: number, expire: () => void) {
    this.#ms = ms;
    this.#expire = expire;
  }

  /** The connection dropped: the clock starts, unless an outage is already being timed or has run out. */
  lost(): void {
    if (this.#since !== undefined) return;
    this.#since = Date.now();
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#ranOut = true;
      this.#expire();
    }, this.#ms);
  }

  /** The connection is ready: the clock stops. Returns whether there was an outage (timed, or run out). */
  regained(): boolean {
    const was = this.#since !== undefined;
    this.stop();
    return was;
  }

  /** Whether Redis has been gone for `ms` or more (calls then fail at once, until it is back). */
  get expired(): boolean {
    return this.#ranOut || (this.#since !== undefined && Date.now() - this.#since >= this.#ms);
  }

  /** Forgets the outage, if any, without calling `expire`: Redis is back, or the owner is closing. */
  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = this.#since = undefined;
    this.#ranOut = false;
  }
}
