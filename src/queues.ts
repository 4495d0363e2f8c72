/**
 * Python's `multiprocessing` queues: `Queue`, `SimpleQueue` and
 * `JoinableQueue`, usable from every process that has them (pass a queue in
 * a process's `args`). Items are copied as bytes through a ring in shared
 * memory (see `ring.ts`), so they cross between any two processes, including
 * two children, without the main thread's help.
 *
 * @module
 */
import { Empty, Full } from "./errors.ts";
import { beginCommit, endCommit } from "./fence.ts";
import { Feeder } from "./feeder.ts";
import { pickle, SENDS, unpickle } from "./pickle.ts";
import { closeAndJoin, takeUntilClosed } from "./queue_closing.ts";
import { dumpingForDelivery } from "./lifecycle.ts";
import { reduce, type Reduction, registerKind } from "./reduction.ts";
import { adopted, reviving } from "./revival.ts";
import { TIMED_OUT } from "./blocking.ts";
import { Ring } from "./ring.ts";
import { assertMayBlock, readWait, type Wait, waitCell } from "./wait.ts";

/** How `put` and `get` wait: Python's `block` and `timeout`, plus an `AbortSignal`. */
export interface QueueWaitOptions {
  /** `false`: do not wait at all (as the `…Nowait` methods). Default `true`. */
  block?: boolean;
  /** Milliseconds to wait at most; then `put` throws `Full` and `get` throws `Empty`. */
  timeout?: number;
  /** Stops the wait; the call rejects with the signal's reason. */
  signal?: AbortSignal;
}

interface QueueState {
  ring: SharedArrayBuffer;
  maxsize: number;
  /** A JoinableQueue's count of unfinished tasks. */
  tasks?: SharedArrayBuffer;
}

/** A JoinableQueue's shared count of items put and not yet marked done. */
const tasksOf = new WeakMap<Queue, Int32Array>();

function readOptions(options: QueueWaitOptions | undefined, what: string): Wait {
  const wait = readWait(options ?? null, what);
  return options?.block === false ? { timeout: 0, signal: wait.signal } : wait;
}

function readMaxsize(maxsize: number, what: string): number {
  if (typeof maxsize !== "number" || !Number.isInteger(maxsize)) {
    throw new TypeError(`${what}: maxsize must be an integer, got ${String(maxsize)}`);
  }
  // As Python: zero or less means no limit.
  return Math.max(0, maxsize);
}

/**
 * A FIFO queue shared between processes: Python's `multiprocessing.Queue`.
 * Pass it to a child in `args`; every process that has it may put and get.
 * Items are copied (structured-clone semantics); items from one process
 * arrive in the order it put them, with nothing lost or duplicated.
 *
 * `put` does not need to be awaited: an item that does not fit yet waits in
 * this process, in order, and a child finishes sending before it ends
 * (Python's feeder thread; see `cancelJoinThread`). Await it to wait until
 * the item is in the queue, which a bounded queue (`maxsize` > 0) makes wait
 * for room.
 *
 * @example
 * ```ts
 * import { Process, Queue } from "@mp/multiprocessing";
 *
 * export function f(q: Queue<unknown[]>) {
 *   q.put([42, null, "hello"]);
 * }
 *
 * if (import.meta.main) {
 *   const q = new Queue<unknown[]>();
 *   const p = new Process({ target: f, args: [q] });
 *   p.start();
 *   console.log(JSON.stringify(await q.get())); // [42,null,"hello"]
 *   await p.join();
 * }
 * ```
 */
export class Queue<T = unknown> implements AsyncIterable<T> {
  #ring: Ring;
  #feeder: Feeder;
  #maxsize: number;
  #closed = false;
  /** Aborts this process's pending gets when it closes the queue. */
  #closing = new AbortController();

  /**
   * Creates a queue shared by every process it is passed to.
   *
   * @param maxsize The most items the queue holds; 0 (or less) for no limit.
   * @throws {TypeError} when `maxsize` is not an integer.
   */
  constructor(maxsize: number = 0) {
    const state = adopted<QueueState>();
    this.#maxsize = state ? state.maxsize : readMaxsize(maxsize, `new ${new.target.name}`);
    this.#ring = state ? new Ring(state.ring) : Ring.create();
    if (state?.tasks) tasksOf.set(this, new Int32Array(state.tasks));
    this.#feeder = new Feeder(this.#ring, this.#maxsize);
  }

  /**
   * Puts `obj` on the queue. The returned Promise resolves once it is in the
   * queue; on a bounded queue it waits for room, and rejects with `Full` when
   * `timeout` passes or `block` is `false` and there is none. An unbounded
   * queue never rejects with `Full`.
   *
   * @throws {Error} synchronously, when this process closed the queue.
   * @throws {TypeError} synchronously, naming what in `obj` cannot be copied.
   * @throws {RangeError} synchronously, for a NaN or negative timeout.
   */
  put(obj: T, options?: QueueWaitOptions): Promise<void> {
    this.#checkOpen("put");
    const wait = readOptions(options, "Queue.put");
    // A manager proxy in it whose count must reach the server first: the item waits here until it has.
    const [bytes, counts] = dumpingForDelivery(() => pickle(obj, "Queue.put(obj)", SENDS));
    const timeout = this.#maxsize ? wait.timeout : Infinity;
    this.#countTask(1);
    return this.#feeder.post(bytes, timeout, wait.signal, counts).then(
      (sent) => {
        if (!sent) throw (this.#countTask(-1), new Full());
      },
      (error) => {
        this.#countTask(-1);
        throw error;
      },
    );
  }

  /**
   * Puts `obj` without waiting: Python's `put_nowait`.
   *
   * @throws {Full} when a bounded queue has no room now. (An unbounded queue
   * keeps the item in this process until there is room, in order, and so an
   * item holding a manager proxy until the manager's count of it is sent;
   * a bounded one throws `Full` for such an item when that count could not
   * be sent at once.)
   */
  putNowait(obj: T): void {
    this.#checkOpen("putNowait");
    const [bytes, counts] = dumpingForDelivery(() => pickle(obj, "Queue.putNowait(obj)", SENDS));
    this.#countTask(1);
    if (!counts.length && this.#feeder.tryNow(bytes)) return;
    if (this.#maxsize) throw (this.#countTask(-1), new Full());
    void this.#feeder.post(bytes, Infinity, undefined, counts);
  }

  /**
   * Puts `obj`, blocking this worker until it is in the queue: the `put` of
   * a process that may block.
   *
   * An item holding a manager proxy is put at once even when the manager's
   * count of that proxy could not be sent yet (it needs this worker's event
   * loop, which the block stops): its receiver's first requests about the
   * proxy may then reach the server first. Use `put` for such items.
   *
   * @throws {Full} when a bounded queue stays full for `timeout` ms.
   * @throws {Error} on the main thread, which must not block.
   */
  putSync(obj: T, options?: QueueWaitOptions): void {
    assertMayBlock("Queue.putSync");
    this.#checkOpen("putSync");
    const wait = readOptions(options, "Queue.putSync");
    const bytes = pickle(obj, "Queue.putSync(obj)", SENDS);
    this.#countTask(1);
    if (!this.#feeder.postSync(bytes, this.#maxsize ? wait.timeout : Infinity, "Queue.putSync")) {
      this.#countTask(-1);
      throw new Full();
    }
  }

  /**
   * Takes the next item, waiting for one. Rejects with `Empty` when
   * `timeout` passes or `block` is `false` and the queue is empty, and with
   * an `Error` when this process closes the queue meanwhile.
   *
   * @throws {RangeError} synchronously, for a NaN or negative timeout.
   */
  get(options?: QueueWaitOptions): Promise<T> {
    this.#checkOpen("get");
    const wait = readOptions(options, "Queue.get");
    const ready = wait.signal?.aborted ? undefined : this.#ring.tryReceive();
    if (ready) return Promise.resolve(unpickle(ready) as T);
    const signal = wait.signal ? AbortSignal.any([wait.signal, this.#closing.signal]) : this.#closing.signal;
    return this.#ring.run(this.#ring.receive(), { timeout: wait.timeout, signal }).then((bytes) => {
      if (bytes === TIMED_OUT) throw new Empty();
      return unpickle(bytes) as T;
    });
  }

  /**
   * Takes the next item without waiting: Python's `get_nowait`.
   *
   * @throws {Empty} when no complete item is in the queue now.
   */
  getNowait(): T {
    this.#checkOpen("getNowait");
    // A message in one chunk is complete once it is published, counted or not: its writer may have died between
    // publishing and counting it, and the count then stays low until a reader heals it (ring.ts, receive).
    const ready = this.#ring.tryReceive();
    if (ready) return unpickle(ready) as T;
    // A streamed item not yet complete must not be waited for here.
    if (this.#ring.items() === 0) throw new Empty();
    const bytes = this.#ring.receiveIfReady("Queue.getNowait");
    if (!bytes) throw new Empty();
    return unpickle(bytes) as T;
  }

  /**
   * Takes the next item, blocking this worker until there is one.
   *
   * @throws {Empty} when none comes within `timeout` ms, or `block` is `false`.
   * @throws {Error} on the main thread, which must not block.
   */
  getSync(options?: QueueWaitOptions): T {
    assertMayBlock("Queue.getSync");
    this.#checkOpen("getSync");
    const wait = readOptions(options, "Queue.getSync");
    const bytes = this.#ring.tryReceive() ??
      this.#ring.runSync(this.#ring.receive(), wait.timeout, "Queue.getSync");
    if (bytes === TIMED_OUT) throw new Empty();
    return unpickle(bytes) as T;
  }

  /** How many items are in the queue, counting those this process has not yet sent. */
  qsize(): number {
    return this.#ring.items() + this.#feeder.pending;
  }

  /** Whether the queue holds no item (a snapshot: other processes may change it at once). */
  empty(): boolean {
    return this.qsize() === 0;
  }

  /** Whether a bounded queue is at its `maxsize` (always `false` for an unbounded one). */
  full(): boolean {
    return this.#maxsize > 0 && this.qsize() >= this.#maxsize;
  }

  /**
   * Says this process will neither put nor get any more, as Python's
   * `close()`: later calls here throw, and gets still waiting reject. Items
   * already put are still delivered (see `joinThread`). Other processes keep
   * using the queue.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closing.abort(new Error(`the ${this.constructor.name} was closed while a get was waiting`));
  }

  /**
   * Resolves once every item this process put is in the queue (Python's
   * `join_thread`, which waits for the feeder thread).
   *
   * @throws {Error} before `close()`, as in Python.
   */
  joinThread(): Promise<void> {
    if (!this.#closed) throw new Error("joinThread() may only be called after close()");
    return this.#feeder.flushed();
  }

  /**
   * Lets this process end without waiting until the items it put are in the
   * queue; they may then be lost (Python's `cancel_join_thread`).
   */
  cancelJoinThread(): void {
    this.#feeder.abandonAtExit = true;
  }

  /** `for await (const item of queue)`: takes items until this process closes the queue. */
  [Symbol.asyncIterator](): AsyncGenerator<T, void, undefined> {
    return takeUntilClosed(this, () => this.#closed);
  }

  /** `await using q = new Queue()`: closes the queue and waits until what it put is sent. */
  [Symbol.asyncDispose](): Promise<void> {
    return closeAndJoin(this);
  }

  /**
   * How the queue travels to another process (see `reduction.ts`).
   *
   * @ignore
   */
  [reduce](): Reduction {
    this.#checkOpen("send");
    const tasks = tasksOf.get(this);
    const state: QueueState = {
      ring: this.#ring.buffer,
      maxsize: this.#maxsize,
      tasks: tasks?.buffer as SharedArrayBuffer,
    };
    return { kind: tasks ? "@mp/JoinableQueue" : "@mp/Queue", state };
  }

  #countTask(change: number): void {
    const tasks = tasksOf.get(this);
    if (!tasks) return;
    // A commit (fence.ts): a process reported ended counts no task.
    beginCommit();
    const left = Atomics.add(tasks, 0, change) + change;
    endCommit();
    if (left === 0) Atomics.notify(tasks, 0);
  }

  #checkOpen(what: string): void {
    if (this.#closed) throw new Error(`${what}: this ${this.constructor.name} is closed in this process`);
  }
}

/**
 * A `Queue` whose consumers report when each item is done, so that a
 * producer can wait until all are: Python's `JoinableQueue`.
 *
 * @example
 * ```ts
 * import { JoinableQueue } from "@mp/multiprocessing";
 *
 * const q = new JoinableQueue<number>();
 * await q.put(1);
 * console.log(await q.get()); // 1
 * q.taskDone();
 * await q.join(); // every item put was marked done
 * ```
 */
export class JoinableQueue<T = unknown> extends Queue<T> {
  /**
   * Creates a queue whose items are counted until each is marked done.
   *
   * @param maxsize The most items the queue holds; 0 (or less) for no limit.
   */
  constructor(maxsize: number = 0) {
    super(maxsize);
    if (!tasksOf.has(this)) tasksOf.set(this, new Int32Array(new SharedArrayBuffer(4)));
  }

  /**
   * Marks one item taken with `get` as done.
   *
   * @throws {Error} when called more times than items were put.
   */
  taskDone(): void {
    const tasks = tasksOf.get(this)!;
    beginCommit();
    const left = Atomics.sub(tasks, 0, 1) - 1;
    if (left < 0) Atomics.add(tasks, 0, 1);
    endCommit();
    if (left < 0) {
      throw new Error("taskDone() called too many times: more than items were put");
    }
    if (left === 0) Atomics.notify(tasks, 0);
  }

  /** Resolves when every item put (by any process) has been marked done with `taskDone`. */
  async join(): Promise<void> {
    const tasks = tasksOf.get(this)!;
    for (let left = Atomics.load(tasks, 0); left !== 0; left = Atomics.load(tasks, 0)) {
      await waitCell(tasks, 0, left, { timeout: Infinity });
    }
  }
}

/**
 * A queue with only `put`, `get`, `empty` and `close`: Python's
 * `SimpleQueue`, without a size limit.
 *
 * @example
 * ```ts
 * import { SimpleQueue } from "@mp/multiprocessing";
 *
 * const q = new SimpleQueue<string>();
 * await q.put("hello");
 * console.log(await q.get()); // "hello"
 * ```
 */
export class SimpleQueue<T = unknown> {
  #queue: Queue<T>;

  constructor() {
    this.#queue = new Queue<T>();
  }

  /** Puts `obj`; resolves once it is in the queue (see `Queue.put`). */
  put(obj: T): Promise<void> {
    return this.#queue.put(obj);
  }

  /** Takes the next item, waiting for one. */
  get(): Promise<T> {
    return this.#queue.get();
  }

  /** Takes the next item, blocking this worker until there is one. */
  getSync(): T {
    return this.#queue.getSync();
  }

  /** Whether the queue holds no item now. */
  empty(): boolean {
    return this.#queue.empty();
  }

  /** Says this process will not use the queue any more. */
  close(): void {
    this.#queue.close();
  }

  /**
   * How the queue travels to another process.
   *
   * @ignore
   */
  [reduce](): Reduction {
    return { kind: "@mp/SimpleQueue", state: this.#queue[reduce]().state };
  }
}

// A SimpleQueue's constructor makes the Queue inside it, which adopts the state.
registerKind("@mp/Queue", (state) => reviving(state, () => new Queue()));
registerKind("@mp/JoinableQueue", (state) => reviving(state, () => new JoinableQueue()));
registerKind("@mp/SimpleQueue", (state) => reviving(state, () => new SimpleQueue()));
