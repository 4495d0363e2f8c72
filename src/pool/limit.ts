/**
 * A task's limits, beyond Python: its `timeout` and `signal` (see
 * `TaskOptions`), armed when the task is submitted and disarmed when it
 * settles. Both pools use it; what expiring means (withdraw, kill, cancel
 * on a host) is theirs.
 *
 * @module
 */
import { TimeoutError } from "../errors.ts";
import { after, type Wait } from "../wait.ts";

/** An armed timeout and abort listener. */
export class Limit {
  #cancelTimer?: () => void;
  #signal?: AbortSignal;
  #onAbort?: () => void;

  /**
   * Arms `wait` for one task: `expire` is called with the reason when the
   * time runs out (`TimeoutError`) or the signal aborts (its reason). When
   * the signal has aborted already, `expire` is called now and there is
   * nothing to disarm (undefined).
   */
  static arm(wait: Wait, expire: (reason: unknown) => void): Limit | undefined {
    if (wait.signal?.aborted) return void expire(wait.signal.reason);
    const limit = new Limit();
    if (wait.timeout !== Infinity) {
      const ms = wait.timeout;
      // after(), not setTimeout: a timeout of 2^31 ms or more would fire at once.
      limit.#cancelTimer = after(ms, () => expire(new TimeoutError(`the task did not finish within ${ms} ms`)));
    }
    if (wait.signal) {
      const signal = wait.signal;
      limit.#signal = signal;
      limit.#onAbort = () => expire(signal.reason);
      signal.addEventListener("abort", limit.#onAbort, { once: true });
    }
    return limit;
  }

  /** The task settled: neither fires any more. */
  disarm(): void {
    this.#cancelTimer?.();
    if (this.#onAbort) this.#signal!.removeEventListener("abort", this.#onAbort);
  }
}
