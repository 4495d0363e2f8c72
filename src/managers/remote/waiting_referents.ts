/**
 * The server-side objects whose methods wait: Python's `queue.Queue`,
 * `threading.Lock`/`RLock`/`Semaphore` and `threading.Event`, as a remote
 * manager serves them. Timeouts are Python's, in seconds.
 *
 * Python's server waits in a thread per connection; this one waits on its
 * event loop, a promise per waiting call, so one server serves any number of
 * waiting clients. A wait ends early when its connection closes (the
 * client died or left): the waiter is taken off the line first, so nothing is
 * handed to a client that is gone.
 *
 * @module
 */
import { pythonError } from "./protocol.ts";
import { type Call, Referent } from "./referents.ts";

/** A queue of waiting calls, woken in order. */
class Waiters {
  #line: (() => boolean)[] = [];

  /**
   * Waits until `ready()` holds (checked now and each time `wake` is called),
   * `timeout` seconds (null: no limit) pass, or the call's connection closes.
   * Resolves whether `ready()` held; `ready()` takes what the waiter gets.
   */
  wait(call: Call, ready: () => boolean, block: unknown, timeout: unknown): boolean | Promise<boolean> {
    if (this.#line.length === 0 && ready()) return true;
    if (block === false || block === 0) return false;
    const seconds = timeout === null || timeout === undefined ? Infinity : Number(timeout);
    if (Number.isNaN(seconds) || seconds < 0) {
      throw pythonError("ValueError", "'timeout' must be a non-negative number");
    }
    if (seconds === 0) return false;
    return new Promise<boolean>((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const done = (outcome: boolean) => {
        clearTimeout(timer);
        call.signal.removeEventListener("abort", gone);
        resolve(outcome);
      };
      const waiter = () => {
        if (!ready()) return false;
        done(true);
        return true;
      };
      const leave = () => {
        const at = this.#line.indexOf(waiter);
        if (at >= 0) this.#line.splice(at, 1);
      };
      const gone = () => {
        leave();
        done(false);
      };
      this.#line.push(waiter);
      call.signal.addEventListener("abort", gone);
      // Capped below 2^31 ms, which every runtime fires at once.
      if (seconds !== Infinity) {
        timer = setTimeout(() => (leave(), done(false)), Math.min(seconds * 1_000, 2 ** 31 - 1));
      }
    });
  }

  /** Wakes the waiters in order, as long as each one's condition holds. */
  wake(): void {
    while (this.#line.length && this.#line[0]()) this.#line.shift();
  }
}

/**
 * Python's `queue.Queue` (and the manager's `JoinableQueue`, which is the same class), as a server keeps it:
 * the docs' `get_queue`.
 *
 * @example
 * ```ts
 * import { BaseManager, ManagedQueue } from "@mp/multiprocessing/managers";
 * const queue = new ManagedQueue();
 * const manager = new BaseManager({ address: ["127.0.0.1", 50000], authkey: "abracadabra" });
 * manager.register("get_queue", () => queue);
 * await (await manager.getServer()).serveForever();
 * ```
 */
export class ManagedQueue extends Referent {
  protected static override parameters = {
    get: ["block", "timeout"],
    put: ["item", "block", "timeout"],
  };
  /** Python's `public_methods(queue.Queue())`. */
  static exposed: readonly string[] = [
    "empty",
    "full",
    "get",
    "get_nowait",
    "join",
    "put",
    "put_nowait",
    "qsize",
    "task_done",
  ];
  #items: unknown[] = [];
  #getters = new Waiters();
  #putters = new Waiters();
  #unfinished = 0;
  #joiners = new Waiters();

  readonly maxsize: number;
  constructor(maxsize: number = 0) {
    super();
    this.maxsize = maxsize;
  }
  #full(): boolean {
    return this.maxsize > 0 && this.#items.length >= this.maxsize;
  }
  qsize(): number {
    return this.#items.length;
  }
  empty(): boolean {
    return this.#items.length === 0;
  }
  full(): boolean {
    return this.#full();
  }
  put(call: Call, item: unknown, block: unknown = true, timeout: unknown = null): void | Promise<void> {
    const add = () => {
      if (this.#full()) return false;
      this.#items.push(item);
      this.#unfinished++;
      return true;
    };
    const settle = (added: boolean) => {
      if (!added) throw pythonError("queue.Full");
      this.#getters.wake();
    };
    const outcome = this.#putters.wait(call, add, block, timeout);
    return outcome instanceof Promise ? outcome.then(settle) : settle(outcome);
  }
  put_nowait(call: Call, item: unknown): void | Promise<void> {
    return this.put(call, item, false);
  }
  get(call: Call, block: unknown = true, timeout: unknown = null): unknown {
    let item: unknown;
    const take = () => {
      if (this.#items.length === 0) return false;
      item = this.#items.shift();
      return true;
    };
    const settle = (took: boolean) => {
      if (!took) throw pythonError("_queue.Empty");
      this.#putters.wake();
      return item;
    };
    const outcome = this.#getters.wait(call, take, block, timeout);
    return outcome instanceof Promise ? outcome.then(settle) : settle(outcome);
  }
  get_nowait(call: Call): unknown {
    return this.get(call, false);
  }
  task_done(): void {
    if (this.#unfinished <= 0) throw pythonError("ValueError", "task_done() called too many times");
    if (--this.#unfinished === 0) this.#joiners.wake();
  }
  join(call: Call): void | Promise<void> {
    const outcome = this.#joiners.wait(call, () => this.#unfinished === 0, true, null);
    return outcome instanceof Promise ? outcome.then(() => {}) : undefined;
  }
  value(): unknown[] {
    return [...this.#items];
  }
}

/**
 * Python's `threading.Lock`, `RLock`, `Semaphore` and `BoundedSemaphore`, as
 * one counter. A lock remembers which client holds it: when that client's
 * lease ends (it died), what it held is released, so the others go on.
 * (Python's server cannot tell, and such a lock stays held.)
 *
 * @example
 * ```ts
 * import { BaseManager, ManagedLock } from "@mp/multiprocessing/managers";
 * const lock = new ManagedLock("Lock");
 * const manager = new BaseManager({ address: ["127.0.0.1", 50000], authkey: "secret" });
 * manager.register("get_lock", () => lock, { proxytype: "AcquirerProxy" });
 * ```
 */
export class ManagedLock extends Referent {
  protected static override parameters = { acquire: ["blocking", "timeout"] };
  /** As Python's `AcquirerProxy`. */
  static exposed: readonly string[] = ["acquire", "release", "__enter__", "__exit__"];
  #free: number;
  #holders: number[] = [];
  #waiters = new Waiters();
  #owner?: number;
  #depth = 0;

  /** @param kind what it is @param value a semaphore's start (1 for a lock) */
  readonly kind: "Lock" | "RLock" | "Semaphore" | "BoundedSemaphore";
  constructor(kind: "Lock" | "RLock" | "Semaphore" | "BoundedSemaphore", value: number = 1) {
    super();
    this.kind = kind;
    if (!Number.isInteger(value) || value < 0) throw pythonError("ValueError", "semaphore initial value must be >= 0");
    this.#free = value;
    this.bound = value;
  }
  readonly bound: number;

  acquire(call: Call, blocking: unknown = true, timeout: unknown = null): boolean | Promise<boolean> {
    if (timeout !== null && timeout !== undefined && Number(timeout) < 0) timeout = null;
    if (this.kind === "RLock" && this.#owner !== undefined && this.#owner === this.#ownerOf(call)) {
      this.#depth++;
      return true;
    }
    return this.#waiters.wait(
      call,
      () => {
        if (this.#free === 0) return false;
        this.#free--;
        this.#holders.push(call.client);
        if (this.kind === "RLock") {
          this.#owner = this.#ownerOf(call);
          this.#depth = 1;
        }
        return true;
      },
      blocking,
      timeout,
    );
  }
  /**
   * An RLock is owned by a calling connection, as Python's by the thread that serves it (our clients make the
   * holder's calls on the connection that acquired it: see `RemoteLockProxy`).
   */
  #ownerOf(call: Call): number {
    return call.connection;
  }
  release(call: Call): void {
    if (this.kind === "RLock") {
      if (this.#owner !== this.#ownerOf(call)) throw pythonError("RuntimeError", "cannot release un-acquired lock");
      if (--this.#depth > 0) return;
      this.#owner = undefined;
    } else if (this.kind === "Lock" && this.#free > 0) {
      throw pythonError("RuntimeError", "release unlocked lock");
    } else if (this.kind === "BoundedSemaphore" && this.#free >= this.bound) {
      throw pythonError("ValueError", "Semaphore released too many times");
    }
    this.#drop(call.client);
  }
  __enter__(call: Call): boolean | Promise<boolean> {
    return this.acquire(call);
  }
  __exit__(call: Call): void {
    this.release(call);
  }
  #drop(client: number): void {
    const at = this.#holders.indexOf(client);
    this.#holders.splice(at >= 0 ? at : 0, 1);
    this.#free++;
    this.#waiters.wake();
  }
  /** For a Condition: whether the calling connection holds it (an RLock), or anybody does (the others). */
  ownedBy(call: Call): boolean {
    return this.kind === "RLock" ? this.#owner === this.#ownerOf(call) : this.#free === 0;
  }
  /** For a Condition's wait: releases it however deep the caller holds it; the depth to take it back at. */
  releaseFully(call: Call): number {
    const depth = this.kind === "RLock" ? this.#depth : 1;
    if (this.kind === "RLock") this.#depth = 1;
    this.release(call);
    return depth;
  }
  /** After a Condition's wait: takes it again at `depth` (not when the caller's connection closed meanwhile). */
  async reacquire(call: Call, depth: number): Promise<void> {
    if (await this.acquire(call) && this.kind === "RLock") this.#depth = depth;
  }
  /** The client `client` is gone: what it holds is released. */
  releaseHeldBy(client: number): void {
    if (client === 0) return;
    while (this.#holders.includes(client)) {
      if (this.kind === "RLock") this.#owner = undefined;
      this.#drop(client);
    }
  }
  value(): string {
    return this.repr();
  }
  override repr(): string {
    return `<${this.kind} ${this.#free === 0 ? "locked" : "unlocked"}>`;
  }
}

/**
 * Python's `threading.Event`, as a server keeps it.
 *
 * @example
 * ```ts
 * import { ManagedEvent } from "@mp/multiprocessing/managers";
 * const event = new ManagedEvent();
 * event.set();
 * console.log(event.is_set()); // true
 * ```
 */
export class ManagedEvent extends Referent {
  protected static override parameters = { wait: ["timeout"] };
  /** As Python's `EventProxy`. */
  static exposed: readonly string[] = ["is_set", "set", "clear", "wait"];
  #set = false;
  #waiters = new Waiters();

  is_set(): boolean {
    return this.#set;
  }
  set(): void {
    this.#set = true;
    this.#waiters.wake();
  }
  clear(): void {
    this.#set = false;
  }
  wait(call: Call, timeout: unknown = null): boolean | Promise<boolean> {
    // Every waiter sees the same flag: none takes it.
    const outcome = this.#waiters.wait(call, () => this.#set, true, timeout);
    if (outcome instanceof Promise) return outcome.then((set) => (this.#waiters.wake(), set));
    return outcome;
  }
  value(): boolean {
    return this.#set;
  }
}

/** Python's exception for a broken barrier. */
const broken = () => pythonError("threading.BrokenBarrierError");

/**
 * Python's `threading.Barrier(parties, action=None, timeout=None)`, as a
 * server keeps it (SyncManager's `Barrier`, Python's `BarrierProxy`):
 * `wait(timeout)` resolves each party's index once `parties` calls wait;
 * a timeout, `abort()` or `reset()` breaks it for those waiting
 * (`BrokenBarrierError`). A waiting client whose connection closes can never
 * arrive: the barrier breaks, as on a timeout.
 *
 * @example
 * ```ts
 * import { ManagedBarrier } from "@mp/multiprocessing/managers";
 * const barrier = new ManagedBarrier(2);
 * console.log(barrier.value()); // { parties: 2, n_waiting: 0, broken: false }
 * ```
 */
export class ManagedBarrier extends Referent {
  protected static override parameters = { wait: ["timeout"] };
  /** As Python's `BarrierProxy`. */
  static exposed: readonly string[] = ["__getattribute__", "wait", "abort", "reset"];
  /** How many calls of `wait` release one another. */
  readonly parties: number;
  readonly #timeout: unknown;
  /** The calls waiting now: each is told its index, or that the barrier broke. */
  #waiting: { release: (index: number) => void; fail: () => void }[] = [];
  #broken = false;

  /** @param parties how many parties @param action refused (a callable cannot come over the wire) @param timeout seconds */
  constructor(parties: unknown, action: unknown = null, timeout: unknown = null) {
    super();
    if (typeof parties !== "number" || !Number.isInteger(parties) || parties < 1) {
      throw pythonError("ValueError", "parties must be >= 1");
    }
    if (action !== null && action !== undefined) {
      throw pythonError("TypeError", "a served Barrier takes no action (a callable cannot be run from the wire)");
    }
    this.parties = parties;
    this.#timeout = timeout;
  }

  /** `barrier.parties`, `.n_waiting`, `.broken`, as Python's proxy asks for them. */
  __getattribute__(_: Call, name: unknown): unknown {
    if (name === "parties") return this.parties;
    if (name === "n_waiting") return this.#waiting.length;
    if (name === "broken") return this.#broken;
    throw pythonError("AttributeError", `'Barrier' object has no attribute '${String(name)}'`);
  }

  /** Waits for the other parties; resolves this party's index (0 to parties - 1). */
  wait(call: Call, timeout: unknown = null): number | Promise<number> {
    if (this.#broken) throw broken();
    const index = this.#waiting.length;
    if (index + 1 === this.parties) {
      const waiting = this.#waiting;
      this.#waiting = [];
      waiting.forEach((waiter, i) => waiter.release(i));
      return index;
    }
    const limit = timeout ?? this.#timeout;
    const seconds = limit === null || limit === undefined ? Infinity : Number(limit);
    if (Number.isNaN(seconds) || seconds < 0) {
      throw pythonError("ValueError", "'timeout' must be a non-negative number");
    }
    return new Promise<number>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const end = () => {
        clearTimeout(timer);
        call.signal.removeEventListener("abort", gone);
      };
      const gone = () => this.abort();
      this.#waiting.push({
        release: (i) => (end(), resolve(i)),
        fail: () => (end(), reject(broken())),
      });
      call.signal.addEventListener("abort", gone);
      // Capped below 2^31 ms, which every runtime fires at once.
      if (seconds !== Infinity) timer = setTimeout(() => this.abort(), Math.min(seconds * 1_000, 2 ** 31 - 1));
    });
  }

  /** Breaks the barrier: waiting and later calls of `wait` fail with BrokenBarrierError. */
  abort(): void {
    this.#broken = true;
    this.#fail();
  }

  /** Back to the empty, unbroken barrier; those waiting fail with BrokenBarrierError. */
  reset(): void {
    this.#fail();
    this.#broken = false;
  }

  #fail(): void {
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const waiter of waiting) waiter.fail();
  }

  /** What `_getvalue()` copies. */
  value(): unknown {
    return { parties: this.parties, n_waiting: this.#waiting.length, broken: this.#broken };
  }
}

/**
 * Python's `threading.Condition(lock=None)`, as a server keeps it
 * (SyncManager's `Condition`, Python's `ConditionProxy`): on a Lock or RLock
 * of the same server (a proxy of it, as the argument arrives), or on its own
 * RLock, owned by the calling connection as Python's by the serving thread; `wait(timeout)`
 * releases it, sleeps until a `notify` or the timeout, takes it back and
 * says whether it was notified; `wait_for` is the proxy's own loop.
 *
 * @example
 * ```ts
 * import { ManagedCondition } from "@mp/multiprocessing/managers";
 * const condition = new ManagedCondition();
 * console.log(condition.repr()); // <Condition(<RLock unlocked>, 0)>
 * ```
 */
export class ManagedCondition extends Referent {
  protected static override parameters = { acquire: ["blocking", "timeout"], wait: ["timeout"], notify: ["n"] };
  /** As Python's `ConditionProxy`. */
  static exposed: readonly string[] = ["acquire", "release", "wait", "notify", "notify_all"];
  readonly #lock: ManagedLock;
  #sleepers: (() => void)[] = [];

  /** @param lock a Lock or RLock this server keeps (the server hands it over for its proxy), or none: a new RLock */
  constructor(lock: unknown = null) {
    super();
    if (lock === null || lock === undefined) {
      this.#lock = new ManagedLock("RLock");
    } else if (lock instanceof ManagedLock && (lock.kind === "Lock" || lock.kind === "RLock")) {
      this.#lock = lock;
    } else {
      throw pythonError("TypeError", "Condition(lock): lock must be a Lock or an RLock of this manager");
    }
  }

  /** Takes its lock. */
  acquire(call: Call, blocking: unknown = true, timeout: unknown = null): boolean | Promise<boolean> {
    return this.#lock.acquire(call, blocking, timeout);
  }

  /** Gives its lock back. */
  release(call: Call): void {
    this.#lock.release(call);
  }

  /** Sleeps until notified or `timeout` seconds passed, without the lock; resolves whether it was notified. */
  async wait(call: Call, timeout: unknown = null): Promise<boolean> {
    if (!this.#lock.ownedBy(call)) throw pythonError("RuntimeError", "cannot wait on un-acquired lock");
    const seconds = timeout === null || timeout === undefined ? Infinity : Math.max(0, Number(timeout));
    if (Number.isNaN(seconds)) throw pythonError("ValueError", "'timeout' must be a number");
    const depth = this.#lock.releaseFully(call);
    const notified = await new Promise<boolean>((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const leave = (outcome: boolean) => {
        clearTimeout(timer);
        call.signal.removeEventListener("abort", gone);
        const at = this.#sleepers.indexOf(wake);
        if (at >= 0) this.#sleepers.splice(at, 1);
        resolve(outcome);
      };
      const wake = () => leave(true);
      const gone = () => leave(false);
      this.#sleepers.push(wake);
      call.signal.addEventListener("abort", gone);
      // Capped below 2^31 ms, which every runtime fires at once.
      if (seconds !== Infinity) timer = setTimeout(() => leave(false), Math.min(seconds * 1_000, 2 ** 31 - 1));
    });
    if (!call.signal.aborted) await this.#lock.reacquire(call, depth);
    return notified;
  }

  /** Wakes up to `n` sleepers (the caller must hold the lock). */
  notify(call: Call, n: unknown = 1): void {
    if (!this.#lock.ownedBy(call)) throw pythonError("RuntimeError", "cannot notify on un-acquired lock");
    for (let i = 0; i < Number(n) && this.#sleepers.length > 0; i++) this.#sleepers[0]();
  }

  /** The client `client` is gone: its hold on the lock is released, as a lock's. */
  releaseHeldBy(client: number): void {
    this.#lock.releaseHeldBy(client);
  }

  /** Wakes every sleeper (the caller must hold the lock). */
  notify_all(call: Call): void {
    this.notify(call, this.#sleepers.length);
  }

  /** What `_getvalue()` copies: its repr. */
  value(): string {
    return this.repr();
  }

  /** Python's repr. */
  override repr(): string {
    return `<Condition(${this.#lock.repr()}, ${this.#sleepers.length})>`;
  }
}
