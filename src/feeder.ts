/**
 * The sending side of a queue or connection in one process: Python's feeder
 * thread. Messages go into the ring at once when they can; otherwise they
 * wait here, in order, and are written as room appears. So items from one
 * process arrive in the order it sent them even when it does not await each
 * `put`, and a child does not end before what it sent is in the ring
 * (unless `cancelJoinThread()` said so).
 *
 * @module
 */
import { beforeChildExit } from "./lifecycle.ts";
import { type Plan, TIMED_OUT } from "./blocking.ts";
import type { Ring } from "./ring.ts";
import { deadline, remaining } from "./wait.ts";

interface Entry {
  bytes: Uint8Array;
  /** `performance.now()` after which the entry gives up (Infinity: never). */
  end: number;
  signal?: AbortSignal;
  steps?: Plan<void>;
  settle: PromiseWithResolvers<boolean>;
  /** Work that must be done before the message may be written (a manager's count of a proxy in it). */
  after?: Promise<unknown>;
}

/** Feeders with messages still waiting, which a child finishes before it ends. */
const unflushed = new Set<Feeder>();
beforeChildExit(() => Promise.all([...unflushed].filter((f) => !f.abandonAtExit).map((f) => f.flushed())));

/** One process's ordered sending into a ring. */
export class Feeder {
  readonly ring: Ring;
  /** Most complete messages the ring may hold (0: no limit), a bounded queue's `maxsize`. */
  readonly limit: number;
  #pending: Entry[] = [];
  #pumping = false;
  #drained?: PromiseWithResolvers<void>;
  /** Whether a child ends without waiting for the messages still here (Python's `cancel_join_thread`). */
  abandonAtExit = false;

  constructor(ring: Ring, limit: number) {
    this.ring = ring;
    this.limit = limit;
  }

  /** Messages still waiting in this process. */
  get pending(): number {
    return this.#pending.length;
  }

  /** Writes `bytes` now if nothing waits before it, the write lock is free and the ring has room; never waits. */
  tryNow(bytes: Uint8Array): boolean {
    return this.#pending.length === 0 && this.ring.trySend(bytes, this.limit);
  }

  /**
   * Sends `bytes` after everything this process sent before; resolves
   * `false` if `timeout` ms pass first (then nothing was sent). `bytes` may
   * be reused by the caller afterwards: what must wait is copied. With
   * `after`, the message waits here until all of it has settled, and the
   * post rejects with the first failure (then nothing was sent).
   */
  post(
    bytes: Uint8Array,
    timeout: number,
    signal: AbortSignal | undefined,
    after: Promise<unknown>[] = [],
  ): Promise<boolean> {
    if (!signal?.aborted && !after.length && this.tryNow(bytes)) return Promise.resolve(true);
    const entry: Entry = {
      bytes: bytes.slice(),
      end: deadline(timeout),
      signal,
      settle: Promise.withResolvers<boolean>(),
      after: after.length ? Promise.all(after) : undefined,
    };
    this.#pending.push(entry);
    unflushed.add(this);
    if (!this.#pumping) void this.#pump();
    return entry.settle.promise;
  }

  /** Blocks this worker until everything waiting and then `bytes` are sent; `false` on timeout. */
  postSync(bytes: Uint8Array, timeout: number, what: string): boolean {
    const end = deadline(timeout);
    while (this.#pending.length) {
      const entry = this.#pending[0];
      // An entry still waiting for its `after` is written now all the same: that work needs this worker's event
      // loop, which a blocking send stops, so waiting for it here would never end.
      const sent = this.ring.runSync(this.#steps(entry), Math.min(remaining(entry.end), remaining(end)), what);
      if (sent === TIMED_OUT && remaining(entry.end) > 0) return false;
      this.#pending.shift();
      entry.settle.resolve(sent !== TIMED_OUT);
    }
    this.#idle();
    // The common case without a generator, which costs as much as the rest of a put on Bun.
    if (this.ring.trySend(bytes, this.limit)) return true;
    return this.ring.runSync(this.ring.send(bytes, this.limit), remaining(end), what) !== TIMED_OUT;
  }

  /** Resolves once nothing waits here any more. */
  flushed(): Promise<void> {
    if (!this.#pending.length) return Promise.resolve();
    this.#drained ??= Promise.withResolvers<void>();
    return this.#drained.promise;
  }

  #steps(entry: Entry): Plan<void> {
    return (entry.steps ??= this.ring.send(entry.bytes, this.limit));
  }

  async #pump(): Promise<void> {
    this.#pumping = true;
    try {
      while (this.#pending.length) {
        const entry = this.#pending[0];
        let outcome: boolean | Error;
        try {
          await entry.after;
          const sent = await this.ring.run(this.#steps(entry), {
            timeout: remaining(entry.end),
            signal: entry.signal,
          });
          outcome = sent !== TIMED_OUT;
        } catch (error) {
          outcome = error as Error;
        }
        // A postSync may have finished this entry while the pump waited.
        if (this.#pending[0] !== entry) continue;
        this.#pending.shift();
        if (outcome instanceof Error) entry.settle.reject(outcome);
        else entry.settle.resolve(outcome);
      }
    } finally {
      this.#pumping = false;
      this.#idle();
    }
  }

  #idle(): void {
    if (this.#pending.length) return;
    unflushed.delete(this);
    this.#drained?.resolve();
    this.#drained = undefined;
  }
}
