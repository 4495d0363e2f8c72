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
 * `await` them, which works on the local queue too. (A synchronous answer
 * would block this thread for a network round trip, or need a Redis client
 * on another thread waited for with `Atomics.wait`: both stall the event
 * loop that a queue's other users share.) Such a Promise used as a number
 * or a string, as an unawaited `q.qsize() > 0` is, throws a `TypeError`
 * that says to await it, rather than compare as `NaN`.
 *
 * When Redis goes away, calls wait for it `reconnectTimeout` ms and go on
 * when it is back in time (a blocked `get` waits again on a new
 * connection, for what is left of its timeout); after that they reject
 * with an `Error` naming Redis and the time, and so do calls made while it
 * is still gone. A get whose connection dropped puts back whatever Redis
 * may have moved to it meanwhile, so a lost reply loses no item.
 *
 * @module
 */
import type { Redis } from "ioredis";
import { Buffer } from "node:buffer";
import { randomUUID } from "node:crypto";
import { Empty, Full } from "../errors.ts";
import { pickle, unpickle } from "../pickle.ts";
import type { QueueWaitOptions } from "../queues.ts";
import { closeAndJoin, takeUntilClosed } from "../queue_closing.ts";
import { readWait, type Wait } from "../wait.ts";
import { OutageClock } from "./outage.ts";
import { closeRedis, openRedis, readReconnectTimeout } from "./redis.ts";

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

/** Moves everything this consumer's processing list holds back to the head of the queue, in order. */
const GIVE_BACK_SCRIPT = `
local moved = 0
while redis.call('RPOPLPUSH', KEYS[2], KEYS[1]) do moved = moved + 1 end
return moved`;

/** Options of a cluster queue beyond its `maxsize`. */
export interface ClusterQueueOptions {
  /** The queue's name in Redis: every process that opens this name shares the queue. A new name by default. */
  name?: string;
  /** How long (ms) calls wait for a lost Redis before they reject; `connect()`'s (10 s) by default. */
  reconnectTimeout?: number;
}

/** What a blocking move gives when its connection dropped or its wait was aborted. */
const DROPPED = Symbol("dropped");

/**
 * Marks a Promise of this queue so that using it as a number or a string (an
 * unawaited `q.qsize() > 0`, `${q.qsize()}`) throws, saying to await it.
 */
function answer<R>(what: string, promise: Promise<R>): Promise<R> {
  Object.defineProperty(promise, Symbol.toPrimitive, {
    value: () => {
      throw new TypeError(
        `${what} asks Redis and returns a Promise on a cluster Queue: await it (await works on the local Queue too)`,
      );
    },
  });
  return promise;
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
  readonly #reconnectTimeout: number;
  /** The connection for everything but blocking gets; replaced when Redis was gone too long (see #giveUp). */
  #redis: Redis;
  /** Connections free for a blocking get; a get that waits holds one. */
  #idle: Redis[] = [];
  #busy = new Set<Redis>();
  /** Gets under way, which close() waits for before this consumer says it is gone. */
  #gets = 0;
  /** How long Redis has been gone: after reconnectTimeout, calls reject at once until it is back (see #giveUp). */
  readonly #outage: OutageClock;
  /** Calls waiting on Redis, rejected together when this queue gives up on it. */
  #waiting = new Set<() => void>();
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
    const reconnectTimeout = readReconnectTimeout(options.reconnectTimeout, "new Queue");
    this.name = name;
    this.#maxsize = Math.max(0, maxsize);
    this.#url = url;
    this.#reconnectTimeout = reconnectTimeout;
    this.#outage = new OutageClock(reconnectTimeout, () => this.#giveUp());
    this.#redis = this.#open();
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
    return answer("Queue.putNowait()", this.put(obj, { block: false }));
  }

  async #put(bytes: Buffer, wait: Wait): Promise<void> {
    const end = performance.now() + wait.timeout;
    for (;;) {
      wait.signal?.throwIfAborted();
      const done = await this.#bounded(
        "Queue.put",
        this.#redis.eval(PUT_SCRIPT, 1, this.#keys.items, bytes, this.#maxsize),
      );
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
    return answer("Queue.getNowait()", this.get({ block: false }));
  }

  async #get(wait: Wait): Promise<T> {
    this.#gets++;
    try {
      // Registered before anything lands in the processing list, so that a death from here on is noticed.
      await this.#bounded("Queue.get", this.#startHeartbeat());
      const { items, processing } = this.#keys;
      const mine = processing + this.#consumer;
      if (wait.timeout === 0 || wait.signal?.aborted) {
        wait.signal?.throwIfAborted();
        const bytes = await this.#bounded("Queue.get", this.#redis.lmoveBuffer(items, mine, "LEFT", "RIGHT"));
        if (bytes === null) throw new Empty();
        return await this.#handOver(bytes, wait);
      }
      const signal = wait.signal ? AbortSignal.any([wait.signal, this.#closing.signal]) : this.#closing.signal;
      const end = performance.now() + wait.timeout;
      for (;;) {
        const left = end - performance.now();
        // Redis takes 0 as "forever"; a finite wait is in seconds, with decimals.
        const seconds = wait.timeout === Infinity ? 0 : Math.max(left, 1) / 1000;
        const bytes = await this.#bounded("Queue.get", this.#blockingMove(seconds, signal));
        if (bytes === DROPPED) {
          // Redis may have moved an item to this consumer just before the connection dropped: it goes back
          // to the head of the queue (a get handing one over sees it gone, and takes again). Not awaited on
          // abort: the caller hears at once, and close() gives back what is left too.
          const giveBack = this.#giveBack();
          signal.throwIfAborted();
          await this.#bounded("Queue.get", giveBack);
          if (wait.timeout !== Infinity && end - performance.now() <= 0) throw new Empty();
          continue;
        }
        if (bytes === null) {
          signal.throwIfAborted();
          throw new Empty();
        }
        return await this.#handOver(bytes, wait);
      }
    } finally {
      this.#gets--;
    }
  }

  /**
   * One BLMOVE on a connection of its own: the item, `null` at its timeout
   * or once unblocked by an abort, or {@linkcode DROPPED} when the connection
   * dropped. A dropped connection is discarded, not kept: ioredis would send
   * the BLMOVE again once it reconnects, for a get that has moved on.
   */
  #blockingMove(seconds: number, signal: AbortSignal): Promise<Buffer | null | typeof DROPPED> {
    const { items, processing } = this.#keys;
    const connection = this.#idle.pop() ?? openRedis(this.#url);
    this.#busy.add(connection);
    return new Promise((resolve, reject) => {
      let done = false;
      let id: number | undefined;
      const finish = (keep: boolean, settle: () => void) => {
        if (done) return;
        done = true;
        connection.off("close", dropped);
        signal.removeEventListener("abort", abort);
        this.#busy.delete(connection);
        if (keep && !this.#closed) this.#idle.push(connection);
        else connection.disconnect();
        settle();
      };
      const dropped = () => finish(false, () => resolve(DROPPED));
      // Unblocked from the main connection, so ahead of whatever this process sends Redis next (a put right
      // after an aborted get must not go to it); the BLMOVE then answers null, or an item it took just before
      // (which #handOver gives back). A connection that is not up has been served nothing since it dropped.
      const abort = () => {
        if (connection.status !== "ready" || this.#redis.status !== "ready") return dropped();
        if (id !== undefined) void this.#redis.client("UNBLOCK", id).catch(() => {});
      };
      if (signal.aborted) return dropped();
      connection.on("close", dropped);
      signal.addEventListener("abort", abort, { once: true });
      // Asked in the same write as the BLMOVE, so no round trip more: a connection that reconnected has a new id.
      connection.client("ID").then((n) => {
        id = n as number;
        if (signal.aborted && !done) abort();
      }, () => {});
      connection.blmoveBuffer(items, processing + this.#consumer, "LEFT", "RIGHT", seconds).then(
        (bytes) => finish(true, () => resolve(bytes)),
        (error) => finish(false, () => reject(error)),
      );
    });
  }

  /** Moves what this consumer's processing list holds back to the head of the queue. */
  #giveBack(): Promise<unknown> {
    const { items, processing } = this.#keys;
    return this.#redis.eval(GIVE_BACK_SCRIPT, 2, items, processing + this.#consumer).catch(() => {});
  }

  /** The item is in this consumer's processing list: hand it over, or give it back when the get was cancelled. */
  async #handOver(bytes: Buffer, wait: Wait): Promise<T> {
    const { items, processing } = this.#keys;
    const mine = processing + this.#consumer;
    if (wait.signal?.aborted || this.#closed) {
      await this.#bounded("Queue.get", this.#redis.eval(UNTAKE_SCRIPT, 2, items, mine, bytes));
      throw wait.signal?.aborted ? wait.signal.reason : this.#closing.signal.reason;
    }
    if (await this.#bounded("Queue.get", this.#redis.lrem(mine, 1, bytes)) === 0) {
      // Given back meanwhile (this one's heartbeat lapsed, or its connection dropped): it is in the queue again.
      return this.#get(wait);
    }
    return unpickle(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)) as T;
  }

  /** How many items are in the queue now. */
  qsize(): Promise<number> {
    return answer("Queue.qsize()", this.#bounded("Queue.qsize", this.#redis.llen(this.#keys.items)));
  }

  /** Whether the queue holds no item now. */
  empty(): Promise<boolean> {
    return answer("Queue.empty()", this.qsize().then((n) => n === 0));
  }

  /** Whether a bounded queue is at its `maxsize` (always `false` for an unbounded one). */
  full(): Promise<boolean> {
    return answer("Queue.full()", this.qsize().then((n) => this.#maxsize > 0 && n >= this.#maxsize));
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
      while (this.#gets > 0 || this.#busy.size) await sleep(5);
      if (this.#heartbeat !== undefined) {
        const { items, consumers, alive, processing } = this.#keys;
        await this.#bounded(
          "Queue.close",
          this.#redis.multi().eval(GIVE_BACK_SCRIPT, 2, items, processing + this.#consumer)
            .del(alive + this.#consumer).srem(consumers, this.#consumer).exec(),
        ).catch(() => {});
      }
      this.#outage.stop();
      await closeRedis(this.#redis);
    })();
  }

  /** `for await (const item of queue)`: takes items until this queue is closed. */
  [Symbol.asyncIterator](): AsyncGenerator<T, void, undefined> {
    return takeUntilClosed(this, () => this.#closed);
  }

  /** `await using q = new cluster.Queue()`: closes the queue's connections. */
  [Symbol.asyncDispose](): Promise<void> {
    return closeAndJoin(this);
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

  /** A connection for everything but blocking gets, watched for Redis going away and coming back. */
  #open(): Redis {
    const redis = openRedis(this.#url);
    redis.on("close", () => this.#down());
    redis.on("ready", () => this.#up());
    return redis;
  }

  /** Redis is unreachable: calls wait for it up to reconnectTimeout (see #giveUp). */
  #down(): void {
    if (!this.#closed) this.#outage.lost();
  }

  /**
   * Redis stayed away for reconnectTimeout: every waiting call rejects, and
   * so does every call from now until it is back. The connection is replaced,
   * so that the commands it holds for Redis (a put that has just rejected)
   * are never sent when Redis returns.
   */
  #giveUp(): void {
    for (const reject of [...this.#waiting]) reject();
    const old = this.#redis;
    old.removeAllListeners("close");
    old.removeAllListeners("ready");
    old.disconnect();
    this.#redis = this.#open();
  }

  /** Redis is back: calls go on; what a dropped get may have been given goes back to the queue. */
  #up(): void {
    if (this.#outage.regained() && this.#registered) void this.#giveBack();
  }

  /** `work` (a call to Redis), or an `Error` once Redis has been gone for reconnectTimeout. */
  #bounded<R>(what: string, work: Promise<R>): Promise<R> {
    const lost = () =>
      new Error(
        `${what}: lost the connection to Redis at ${this.#url} for ${this.#reconnectTimeout} ms (reconnectTimeout)`,
      );
    if (this.#outage.expired) {
      work.catch(() => {});
      return Promise.reject(lost());
    }
    return new Promise<R>((resolve, reject) => {
      const giveUp = () => reject(lost());
      this.#waiting.add(giveUp);
      work.then(
        (value) => (this.#waiting.delete(giveUp), resolve(value)),
        (error) => (this.#waiting.delete(giveUp), reject(error)),
      );
    });
  }

  #checkOpen(what: string): void {
    if (this.#closed) throw new Error(`${what}: this Queue is closed in this process`);
  }
}
