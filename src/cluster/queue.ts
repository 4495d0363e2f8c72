/**
 * `ClusterQueue`: the local `Queue`'s surface on a Redis list, shared by
 * every process on every machine that opens the same name.
 *
 * Nothing a `put` reported done is lost, and a consumer killed while it
 * waits in `get` loses nothing: `get` moves an item atomically (`BLMOVE`)
 * from the queue into this consumer's own processing list, and removes it
 * from there only once it is about to hand it over. A consumer keeps a
 * heartbeat key alive while it is open; when one lapses (the consumer died),
 * any other consumer moves what that one's processing list holds back to the
 * head of the queue, in order. So an item is delivered at least once, and
 * more than once only to a consumer that died before its `get` returned.
 *
 * Unlike the local queue, whose `putNowait`, `getNowait` and `qsize` answer
 * at once from shared memory, here they ask Redis and return Promises;
 * `await` them, which works on the local queue too.
 *
 * @module
 */
import type { Redis } from "ioredis";
import { Buffer } from "node:buffer";
import { randomUUID } from "node:crypto";
import { Empty, Full } from "../errors.ts";
import { pickle, unpickle } from "../pickle.ts";
import type { QueueWaitOptions } from "../queues.ts";
import { readWait, type Wait } from "../wait.ts";
import { closeRedis, openRedis } from "./redis.ts";

/** How often an open queue renews its heartbeat and looks for dead consumers. */
const HEARTBEAT_MS = 1_000;
/** A consumer silent this long is dead: its processing list goes back to the queue. */
export const CONSUMER_TIMEOUT_MS = 3_000;
/** A bounded queue that is full is asked again this often (ms) by a waiting put. */
const FULL_POLL_MS = 10;

/** Pushes an item only when the list holds fewer than ARGV[2] (0: no limit). */
const PUT_SCRIPT = `
local n = redis.call('LLEN', KEYS[1])
if tonumber(ARGV[2]) > 0 and n >= tonumber(ARGV[2]) then return 0 end
redis.call('RPUSH', KEYS[1], ARGV[1])
return 1`;

/** Gives back an item a get took but did not hand over: to the head of the queue. */
const UNTAKE_SCRIPT = `
if redis.call('LREM', KEYS[2], 1, ARGV[1]) == 1 then redis.call('LPUSH', KEYS[1], ARGV[1]) end
return 1`;

/** Moves the processing lists of consumers whose heartbeat lapsed back to the head of the queue. */
const RECLAIM_SCRIPT = `
local moved = 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if redis.call('EXISTS', ARGV[1] .. id) == 0 then
    local processing = ARGV[2] .. id
    while redis.call('RPOPLPUSH', processing, KEYS[1]) do moved = moved + 1 end
    redis.call('SREM', KEYS[2], id)
  end
end
return moved`;

/** Options of a cluster queue beyond its `maxsize`. */
export interface ClusterQueueOptions {
  /** The queue's name in Redis: every process that opens this name shares the queue. A new name by default. */
  name?: string;
}

function readOptions(options: QueueWaitOptions | undefined, what: string): Wait {
  const wait = readWait(options ?? null, what);
  return options?.block === false ? { timeout: 0, signal: wait.signal } : wait;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => (signal?.removeEventListener("abort", onAbort), resolve()), ms);
    const onAbort = () => (clearTimeout(timer), reject(signal!.reason));
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * A FIFO queue in Redis with the local `Queue`'s methods; make it with
 * `connect(…).Queue`. Open the same `name` anywhere to share it.
 *
 * @example
 * ```ts
 * import { connect } from "@mp/multiprocessing/cluster";
 *
 * const cluster = connect({ url: "redis://127.0.0.1:6379" });
 * await using q = new cluster.Queue<number>(0, { name: "jobs" });
 * await q.put(1);
 * console.log(await q.get({ timeout: 1000 })); // 1
 * ```
 */
export class ClusterQueue<T = unknown> implements AsyncIterable<T>, AsyncDisposable {
  /** The queue's name in Redis. */
  readonly name: string;
  readonly #maxsize: number;
  readonly #url: string;
  readonly #redis: Redis;
  /** Connections free for a blocking get; a get that waits holds one. */
  #idle: Redis[] = [];
  #busy = new Set<Redis>();
  readonly #consumer = randomUUID();
  readonly #keys: { items: string; consumers: string; alive: string; processing: string };
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #registered: Promise<unknown> | undefined;
  #closed = false;
  #closing = new AbortController();
  #shutdown: Promise<void> | undefined;

  /**
   * Opens (or creates) the queue. Use `connect(…).Queue` rather than this.
   *
   * @throws {TypeError} when `maxsize` is not an integer, or the name is empty.
   */
  constructor(url: string, maxsize: number = 0, options: ClusterQueueOptions = {}) {
    if (typeof maxsize !== "number" || !Number.isInteger(maxsize)) {
      throw new TypeError(`new Queue: maxsize must be an integer, got ${String(maxsize)}`);
    }
    const name = options.name ?? randomUUID();
    if (typeof name !== "string" || name === "") throw new TypeError("new Queue: name must be a non-empty string");
    this.name = name;
    this.#maxsize = Math.max(0, maxsize);
    this.#url = url;
    this.#redis = openRedis(url);
    const base = `mp:queue:${name}`;
    this.#keys = {
      items: `${base}:items`,
      consumers: `${base}:consumers`,
      alive: `${base}:alive:`,
      processing: `${base}:processing:`,
    };
  }

  /**
   * Puts `obj` on the queue; resolves once it is in Redis. A bounded queue
   * waits for room, and rejects with `Full` after `timeout` ms or at once
   * with `block: false`.
   *
   * @throws {TypeError} synchronously, naming what in `obj` cannot be sent.
   */
  put(obj: T, options?: QueueWaitOptions): Promise<void> {
    this.#checkOpen("put");
    const wait = readOptions(options, "Queue.put");
    const bytes = Buffer.from(pickle(obj, "Queue.put(obj)"));
    return this.#put(bytes, wait);
  }

  /** Puts `obj` without waiting; rejects with `Full` when a bounded queue has no room. */
  putNowait(obj: T): Promise<void> {
    return this.put(obj, { block: false });
  }

  async #put(bytes: Buffer, wait: Wait): Promise<void> {
    const end = performance.now() + wait.timeout;
    for (;;) {
      wait.signal?.throwIfAborted();
      const done = await this.#redis.eval(PUT_SCRIPT, 1, this.#keys.items, bytes, this.#maxsize);
      if (done === 1) return;
      const left = end - performance.now();
      if (left <= 0) throw new Full();
      await sleep(Math.min(FULL_POLL_MS, left), wait.signal);
    }
  }

  /**
   * Takes the next item, waiting for one: rejects with `Empty` after
   * `timeout` ms (at once with `block: false`), with the signal's reason when
   * it aborts, and with an `Error` when this queue is closed meanwhile.
   */
  get(options?: QueueWaitOptions): Promise<T> {
    this.#checkOpen("get");
    const wait = readOptions(options, "Queue.get");
    return this.#get(wait);
  }

  /** Takes the next item without waiting; rejects with `Empty` when there is none. */
  getNowait(): Promise<T> {
    return this.get({ block: false });
  }

  async #get(wait: Wait): Promise<T> {
    // Registered before anything lands in the processing list, so that a death from here on is noticed.
    await this.#startHeartbeat();
    const { items, processing } = this.#keys;
    const mine = processing + this.#consumer;
    if (wait.timeout === 0 || wait.signal?.aborted) {
      wait.signal?.throwIfAborted();
      const bytes = await this.#redis.lmoveBuffer(items, mine, "LEFT", "RIGHT");
      if (bytes === null) throw new Empty();
      return this.#handOver(bytes, wait);
    }
    const connection = this.#idle.pop() ?? openRedis(this.#url);
    this.#busy.add(connection);
    const signal = wait.signal ? AbortSignal.any([wait.signal, this.#closing.signal]) : this.#closing.signal;
    // A blocked command holds its connection; CLIENT UNBLOCK from another one ends the wait at once.
    const id = await connection.client("ID") as number;
    const unblock = () => void this.#redis.client("UNBLOCK", id).catch(() => {});
    signal.addEventListener("abort", unblock, { once: true });
    try {
      // Redis takes 0 as "forever"; a finite wait is in seconds, with decimals.
      const seconds = wait.timeout === Infinity ? 0 : Math.max(wait.timeout, 1) / 1000;
      const bytes = signal.aborted ? null : await connection.blmoveBuffer(items, mine, "LEFT", "RIGHT", seconds);
      if (bytes === null) {
        signal.throwIfAborted();
        throw new Empty();
      }
      return await this.#handOver(bytes, wait);
    } finally {
      signal.removeEventListener("abort", unblock);
      this.#busy.delete(connection);
      if (this.#closed) connection.disconnect();
      else this.#idle.push(connection);
    }
  }

  /** The item is in this consumer's processing list: hand it over, or give it back when the get was cancelled. */
  async #handOver(bytes: Buffer, wait: Wait): Promise<T> {
    const { items, processing } = this.#keys;
    const mine = processing + this.#consumer;
    if (wait.signal?.aborted || this.#closed) {
      await this.#redis.eval(UNTAKE_SCRIPT, 2, items, mine, bytes);
      throw wait.signal?.aborted ? wait.signal.reason : this.#closing.signal.reason;
    }
    if (await this.#redis.lrem(mine, 1, bytes) === 0) {
      // Another consumer took it back (this one's heartbeat lapsed): it is in the queue again, not ours.
      return this.#get(wait);
    }
    return unpickle(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)) as T;
  }

  /** How many items are in the queue now. */
  qsize(): Promise<number> {
    return this.#redis.llen(this.#keys.items);
  }

  /** Whether the queue holds no item now. */
  async empty(): Promise<boolean> {
    return (await this.qsize()) === 0;
  }

  /** Whether a bounded queue is at its `maxsize` (always `false` for an unbounded one). */
  async full(): Promise<boolean> {
    return this.#maxsize > 0 && (await this.qsize()) >= this.#maxsize;
  }

  /** Says this process is done with the queue: waiting gets reject, connections close. Items stay in Redis. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closing.abort(new Error(`the Queue ${this.name} was closed while a get was waiting`));
    void this.joinThread();
  }

  /** Resolves once the queue's connections are closed (after `close()`). */
  joinThread(): Promise<void> {
    if (!this.#closed) throw new Error("joinThread() may only be called after close()");
    return this.#shutdown ??= (async () => {
      clearInterval(this.#heartbeat);
      for (const connection of this.#idle) connection.disconnect();
      this.#idle = [];
      // Gets still returning give back what they took (see #handOver) before the heartbeat goes.
      while (this.#busy.size) await sleep(5);
      if (this.#heartbeat !== undefined) {
        await this.#redis.multi().del(this.#keys.alive + this.#consumer).srem(this.#keys.consumers, this.#consumer)
          .exec().catch(() => {});
      }
      await closeRedis(this.#redis);
    })();
  }

  /** `for await (const item of queue)`: takes items until this queue is closed. */
  async *[Symbol.asyncIterator](): AsyncGenerator<T, void, undefined> {
    while (!this.#closed) {
      try {
        yield await this.get();
      } catch (error) {
        if (this.#closed) return;
        throw error;
      }
    }
  }

  /** `await using q = new cluster.Queue()`: closes the queue's connections. */
  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return this.joinThread();
  }

  /** Once this process gets from the queue: say it is alive, and reclaim what dead consumers held. */
  #startHeartbeat(): Promise<unknown> {
    if (this.#registered) return this.#registered;
    const beat = () => {
      const { items, consumers, alive, processing } = this.#keys;
      return this.#redis.multi()
        .set(alive + this.#consumer, "1", "PX", CONSUMER_TIMEOUT_MS)
        .sadd(consumers, this.#consumer)
        .eval(RECLAIM_SCRIPT, 2, items, consumers, alive, processing)
        .exec().catch(() => {});
    };
    this.#heartbeat = setInterval(beat, HEARTBEAT_MS);
    return this.#registered = beat();
  }

  #checkOpen(what: string): void {
    if (this.#closed) throw new Error(`${what}: this Queue is closed in this process`);
  }
}
