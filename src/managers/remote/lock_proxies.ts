/**
 * The proxies of locks and conditions in a remote manager: Python's
 * `AcquirerProxy` and `ConditionProxy`, with the in-program `Lock`'s and
 * `Condition`'s names, async.
 *
 * A server (Python's, and ours for Python's sake) owns an RLock by the
 * connection that acquired it, as Python's by the thread that serves it,
 * while a client here spreads its calls over idle connections: so an
 * RLock's (and a Condition's on one) acquire keeps its connection, and the
 * holder's calls — a re-entrant acquire, `release`, a Condition's `wait`
 * and `notify` — go on it. The holder is the proxy in this process, as the
 * in-program RLock's owner is a process.
 *
 * @module
 */
import { EOFError } from "../../errors.ts";
import type { AcquireOptions } from "../../locks.ts";
import { deadline, readWait, remaining, type WaitOptions } from "../../wait.ts";
import { blockTimeout, RemoteProxy } from "./proxies.ts";
import { handleOf, remoteCall } from "./proxy_handles.ts";
import type { Channel } from "./server.ts";
import { seconds } from "./sync_proxies.ts";

/** While a lock owned by its connection is held through a proxy: that connection, and how deep it is held. */
interface Holder {
  channel: Channel;
  depth: number;
}

const holders = new WeakMap<object, Holder>();

/** The Conditions made on a plain `Lock()`, which nobody in particular owns. */
const onPlainLock = new WeakSet<object>();

/** Whether the server owns the proxy's lock by connection: an RLock, a Condition on one. */
function ownedByConnection(proxy: object): boolean {
  const { typeid } = handleOf(proxy).token;
  return (typeid === "RLock" || typeid === "Condition") && !onPlainLock.has(proxy);
}

/**
 * Records that `condition` was made on `lock`: on a plain Lock, its calls may go on any connection.
 *
 * @example
 * ```ts
 * const condition = conditionOn(manager.create("Condition", lock), lock);
 * ```
 */
export function conditionOn<P extends object>(condition: P, lock: object | undefined): P {
  if (lock && handleOf(lock).token.typeid === "Lock") onPlainLock.add(condition);
  return condition;
}

/**
 * The connection that holds the proxy's lock, if it is held (a Condition's `notify` goes on it).
 */
function holderChannel(proxy: object): Channel | undefined {
  return holders.get(proxy)?.channel;
}

/**
 * Runs a Condition's `wait` on the holder's connection, whose lock the
 * server releases while it waits and holds again once it answers.
 */
async function releasedDuring<T>(proxy: object, wait: (channel?: Channel) => Promise<T>): Promise<T> {
  const held = holders.get(proxy);
  holders.delete(proxy);
  const result = await onHolder(proxy, held, () => wait(held?.channel));
  if (held) holders.set(proxy, held);
  return result;
}

/**
 * A call on the holder's connection: when that connection ends (the server died, or cut it), the server has let
 * the lock go with it, so the proxy holds nothing more and its next calls open a connection of their own.
 */
async function onHolder<T>(proxy: object, held: Holder | undefined, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (held && error instanceof EOFError && holders.get(proxy) === held) holders.delete(proxy);
    throw error;
  }
}

/**
 * A lock or semaphore in a remote manager (Python's `AcquirerProxy`), as the
 * library's `Lock`, async. Held by this client: if it dies, our server
 * releases it.

 *
 * @example
 * ```ts
 * import { SyncManager } from "@mp/multiprocessing/managers";
 * await using manager = new SyncManager({ address: ["127.0.0.1", 0] });
 * await manager.start();
 * const lock = manager.Lock();
 * if (await lock.acquire()) await lock.release();
 * ```
 */
export class RemoteLockProxy extends RemoteProxy {
  /** Acquires, waiting as the options say (milliseconds); whether it was acquired. */
  async acquire(options?: AcquireOptions): Promise<boolean> {
    const signal = typeof options === "object" ? options?.signal : undefined;
    const [block, timeout] = blockTimeout(options);
    // No timeout goes as none at all, as Python's AcquirerProxy sends it: a Python server's Lock and RLock
    // refuse `acquire(True, None)` (TypeError), their default being -1.
    const args = timeout === null ? [block] : [block, timeout];
    if (!ownedByConnection(this)) return await remoteCall(this, "acquire", args, signal) as boolean;
    const held = holders.get(this);
    if (held) {
      // Re-entrant, on the connection that owns it: granted at once.
      const again = await onHolder(
        this,
        held,
        () => remoteCall(this, "acquire", args, signal, false, held.channel),
      ) as boolean;
      if (again) held.depth++;
      return again;
    }
    const { client } = handleOf(this);
    const channel = await client.takeChannel();
    let acquired = false;
    try {
      acquired = await remoteCall(this, "acquire", args, signal, false, channel) as boolean;
    } finally {
      if (acquired) holders.set(this, { channel, depth: 1 });
      else client.giveBack(channel);
    }
    return acquired;
  }

  /** Releases; rejects when it was not held. */
  async release(): Promise<void> {
    const held = holders.get(this);
    await onHolder(this, held, () => remoteCall(this, "release", [], undefined, false, held?.channel));
    if (held && --held.depth === 0) {
      // Another holder may have come in meanwhile (a wait taking the lock back): it stays.
      if (holders.get(this) === held) holders.delete(this);
      handleOf(this).client.giveBack(held.channel);
    }
  }
}

/**
 * A condition in a remote manager (`manager.Condition()`), Python's
 * `ConditionProxy`: the in-program `Condition`'s methods, async. The lock
 * is held by this process (our server counts one of our clients as one
 * owner, as the in-program lock's owner is a process), and released by the
 * server if this process dies.
 *
 * What a socket cannot give: the `…Sync` forms and `guard()` (a release is
 * a round trip, which a `using` block cannot await), and aborting a `wait`
 * (closing its connection would leave the lock's state unknown to this
 * side); `waitFor`'s predicate runs here, between waits, as Python's
 * proxy's `wait_for` does.
 *
 * @example
 * ```ts
 * import { SyncManager } from "@mp/multiprocessing/managers";
 * await using manager = new SyncManager({ address: ["127.0.0.1", 0] });
 * await manager.start();
 * const ready = manager.Condition();
 * await ready.acquire();
 * console.log(await ready.wait(10)); // false: nobody notified
 * await ready.release();
 * ```
 */
export class RemoteConditionProxy extends RemoteLockProxy {
  /**
   * Releases the lock, waits until notified or until `timeout` ms pass, then
   * takes the lock back; whether it was notified.
   *
   * @throws {RangeError} for a NaN or negative timeout.
   * @throws {TypeError} for a `signal`.
   */
  wait(timeout?: WaitOptions): Promise<boolean> {
    const wait = readWait(timeout, "Condition.wait");
    if (wait.signal) {
      throw new TypeError("Condition.wait: a remote condition's wait cannot be aborted; give a timeout");
    }
    return releasedDuring(
      this,
      (channel) => remoteCall(this, "wait", [seconds(wait.timeout)], undefined, false, channel) as Promise<boolean>,
    );
  }

  /**
   * Waits until `predicate()` (which may return a promise) is truthy,
   * checking it here after each wake-up; its last result, falsy when
   * `timeout` ms passed first.
   */
  async waitFor<T>(predicate: () => T | PromiseLike<T>, timeout?: WaitOptions): Promise<T> {
    const wait = readWait(timeout, "Condition.waitFor");
    if (wait.signal) {
      throw new TypeError("Condition.waitFor: a remote condition's wait cannot be aborted; give a timeout");
    }
    const end = deadline(wait.timeout);
    let result = await predicate();
    while (!result) {
      const left = remaining(end);
      if (left === 0) break;
      await this.wait(left);
      result = await predicate();
    }
    return result;
  }

  /**
   * Wakes up to `n` waiters (this process must hold the lock).
   *
   * @throws {RangeError} for an `n` that is NaN or negative.
   */
  async notify(n: number = 1): Promise<void> {
    if (typeof n !== "number" || Number.isNaN(n) || n < 0) {
      throw new RangeError(`Condition.notify(n): n must be a number >= 0, got ${String(n)}`);
    }
    await remoteCall(this, "notify", [n === Infinity ? 2 ** 31 - 1 : n], undefined, false, holderChannel(this));
  }

  /** Wakes every waiter (this process must hold the lock). */
  async notifyAll(): Promise<void> {
    await remoteCall(this, "notify_all", [], undefined, false, holderChannel(this));
  }
}
