/**
 * Waiting, the one mechanism under every blocking call of the library:
 * timeouts and abort signals for Promises ({@linkcode within}), and a futex on
 * a shared `Int32Array` cell ({@linkcode waitCell}, {@linkcode waitCellSync},
 * {@linkcode wake}) that locks, queues and barriers are built from.
 *
 * `Atomics.waitAsync` has open event-loop bugs on all three runtimes: a
 * pending wait does not keep Node alive (nodejs/node#61941), Bun drops the
 * resolution if nothing else keeps its loop alive (oven-sh/bun#34911), and
 * Deno can miss a wake-up (denoland/deno#15358). So every async wait also
 * holds a ref'd timer that re-reads the cell: the process stays alive, and a
 * lost wake-up costs latency, never a hang. Where `Atomics.waitAsync` is
 * missing the same timer polls with back-off.
 *
 * @module
 */
import { adapter } from "./adapters/mod.ts";

/** A timeout in milliseconds, or a timeout and an `AbortSignal`. */
export type WaitOptions = number | { timeout?: number; signal?: AbortSignal };

/** A validated {@linkcode WaitOptions}: `timeout` is `Infinity` when none was given. */
export interface Wait {
  timeout: number;
  signal?: AbortSignal;
}

/**
 * Validates a timeout given as a number or as `{ timeout, signal }`.
 *
 * @throws {RangeError} for NaN, a negative timeout, or a non-number.
 */
export function readWait(options: WaitOptions | undefined | null, what: string): Wait {
  const { timeout, signal } = typeof options === "object" && options !== null ? options : { timeout: options };
  if (timeout === undefined || timeout === null) return { timeout: Infinity, signal };
  if (typeof timeout !== "number" || Number.isNaN(timeout) || timeout < 0) {
    throw new RangeError(`${what}: timeout must be a number of milliseconds >= 0, got ${String(timeout)}`);
  }
  return { timeout, signal };
}

/** `performance.now()` at which a wait of `timeout` ms ends. */
export function deadline(timeout: number): number {
  // Without reading the clock when there is no timeout: `performance.now()` costs 0.2 us here, as much as the
  // rest of a small put (measured on Bun and Node).
  return timeout === Infinity ? Infinity : performance.now() + timeout;
}

/** Milliseconds left until `end` (never negative). */
export function remaining(end: number): number {
  return end === Infinity ? Infinity : Math.max(0, end - performance.now());
}

/** The longest delay `setTimeout` takes: 2^31 ms or more fires at once on Deno, Bun and Node. */
const LONGEST_DELAY = 2 ** 31 - 1;

/**
 * Calls `fire` once `ms` milliseconds have passed, for any `ms` (never for
 * `Infinity`): a delay beyond `setTimeout`'s range is waited out in steps.
 * Every timeout of the library goes through here. Returns the cancellation.
 */
export function after(ms: number, fire: () => void): () => void {
  if (ms === Infinity) return () => {};
  const end = performance.now() + ms;
  let timer: ReturnType<typeof setTimeout>;
  const arm = () => {
    const left = end - performance.now();
    // Rounded up: Node fires a fractional delay up to 1 ms early by Date.now (a 1,000 ms limit rejected at 999).
    // Never below 0: Node warns (TimeoutNegativeWarning) of a negative delay, which a deadline already past gives.
    timer = left > LONGEST_DELAY ? setTimeout(arm, LONGEST_DELAY) : setTimeout(fire, Math.max(0, Math.ceil(left)));
  };
  arm();
  return () => clearTimeout(timer);
}

/**
 * Whether `done()` holds within `ms`, asked over and over without sleeping:
 * for a wait that the other side usually ends within microseconds, where
 * parking the thread and waking it would cost more than the wait. The clock
 * is read now and then, as it costs more than most `done()`s.
 */
export function pollUntil(done: () => boolean, ms: number): boolean {
  const end = performance.now() + ms;
  for (let polls = 1; !done(); polls++) {
    if ((polls & 63) === 0 && performance.now() > end) return false;
  }
  return true;
}

/**
 * Resolves `true` when `promise` settles within the wait, `false` when the
 * timeout passes first; rejects with the signal's reason on abort.
 */
export function within(promise: Promise<unknown>, wait: Wait): Promise<boolean> {
  wait.signal?.throwIfAborted();
  if (wait.timeout === Infinity && !wait.signal) return promise.then(() => true);
  const { promise: result, resolve, reject } = Promise.withResolvers<boolean>();
  const cancel = after(wait.timeout, () => finish(false));
  const onAbort = () => {
    cleanup();
    reject(wait.signal!.reason);
  };
  const cleanup = () => {
    cancel();
    wait.signal?.removeEventListener("abort", onAbort);
  };
  const finish = (settled: boolean) => {
    cleanup();
    resolve(settled);
  };
  wait.signal?.addEventListener("abort", onAbort, { once: true });
  promise.then(() => finish(true), () => finish(true));
  return result;
}

/** How a wait on a cell ended. */
export type CellWait = "ok" | "not-equal" | "timed-out";

type WaitAsync = (
  cell: Int32Array,
  index: number,
  value: number,
  timeout: number,
) => { async: false; value: "not-equal" | "timed-out" } | { async: true; value: Promise<"ok" | "timed-out"> };

let nativeWaitAsync: WaitAsync | undefined = (Atomics as { waitAsync?: WaitAsync }).waitAsync?.bind(Atomics);

/** The safety re-read while a native wait is pending, and the fallback's polling range. */
const REREAD_MS = 50;
const POLL_MIN_MS = 1;
const POLL_MAX_MS = 16;

/**
 * Waits, without blocking the thread, until `cell[index]` no longer holds
 * `expected` or {@linkcode wake} is called on it. Callers re-check their own
 * condition afterwards: a wake-up is a hint, not a promise.
 */
export function waitCell(cell: Int32Array, index: number, expected: number, wait: Wait): Promise<CellWait> {
  wait.signal?.throwIfAborted();
  if (Atomics.load(cell, index) !== expected) return Promise.resolve("not-equal");
  if (wait.timeout === 0) return Promise.resolve("timed-out");
  const { promise, resolve, reject } = Promise.withResolvers<CellWait>();
  let poll: ReturnType<typeof setTimeout> | undefined;
  let done = false;
  const onAbort = () => end(() => reject(wait.signal!.reason));
  const end = (settle: () => void) => {
    if (done) return;
    done = true;
    clearTimeout(poll);
    cancel();
    wait.signal?.removeEventListener("abort", onAbort);
    settle();
  };
  const native = nativeWaitAsync?.(cell, index, expected, wait.timeout);
  if (native && !native.async) return Promise.resolve(native.value);
  native?.value.then((value) => end(() => resolve(value)));
  let delay = native ? REREAD_MS : POLL_MIN_MS;
  const recheck = () => {
    if (Atomics.load(cell, index) !== expected) return end(() => resolve("ok"));
    if (!native) delay = Math.min(delay * 2, POLL_MAX_MS);
    poll = setTimeout(recheck, delay);
  };
  poll = setTimeout(recheck, delay);
  // Declared last, so `end` (only ever called later, from a timer or a promise) finds it set.
  const cancel = after(wait.timeout, () => end(() => resolve("timed-out")));
  wait.signal?.addEventListener("abort", onAbort, { once: true });
  return promise;
}

/**
 * Blocks this worker thread until `cell[index]` no longer holds `expected`,
 * a wake-up, or the timeout.
 *
 * @throws {Error} on the main thread, which must not block.
 */
export function waitCellSync(
  cell: Int32Array,
  index: number,
  expected: number,
  timeout: number,
  what: string,
): CellWait {
  assertMayBlock(what);
  return Atomics.wait(cell, index, expected, timeout);
}

/** Wakes every waiter on `cell[index]`; each re-checks what it waits for. */
export function wake(cell: Int32Array, index: number): void {
  Atomics.notify(cell, index);
}

/** Throws unless this thread may block (only workers may). */
export function assertMayBlock(what: string): void {
  if (adapter.parent() === null) {
    throw new Error(
      `${what} blocks its thread, and the main thread must not block (it would stop every Promise and message): ` +
        `use the async form and await it, or call ${what} inside a process`,
    );
  }
}

/**
 * For tests: runs `body` with `Atomics.waitAsync` switched off, so that the
 * polling fallback is exercised on runtimes that have the native call.
 */
export async function withoutNativeWaitAsync<T>(body: () => Promise<T>): Promise<T> {
  const saved = nativeWaitAsync;
  nativeWaitAsync = undefined;
  try {
    return await body();
  } finally {
    nativeWaitAsync = saved;
  }
}
