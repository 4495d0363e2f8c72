/**
 * Beyond one machine: the `Pool` and `Queue` of this library backed by
 * BullMQ on Redis, with worker hosts on any machine that reaches the same
 * Redis. A separate entry point (`@mp/multiprocessing/cluster`), so that a
 * program that does not use it never loads BullMQ or a Redis client.
 *
 * The same program runs on the local pool or on the cluster by changing only
 * where the context comes from: `getContext()` or `connect({ url })`.
 *
 * @example
 * ```ts
 * import { connect } from "@mp/multiprocessing/cluster";
 *
 * export function square(x: number) {
 *   return x * x;
 * }
 *
 * if (import.meta.main) {
 *   // Hosts: `node src/cluster/worker.ts --url redis://127.0.0.1:6379 --root .`
 *   const cluster = connect({ url: "redis://127.0.0.1:6379", root: "." });
 *   await using pool = new cluster.Pool();
 *   console.log(await pool.map(square, [1, 2, 3])); // [1, 4, 9]
 * }
 * ```
 *
 * @module
 */
import { ClusterPool, type ClusterPoolOptions } from "./pool.ts";
import { DEFAULT_QUEUE, rootURL } from "./protocol.ts";
import { ClusterQueue, type ClusterQueueOptions } from "./queue.ts";
import { checkURL, DEFAULT_URL, readReconnectTimeout } from "./redis.ts";

export { ClusterPool, type ClusterPoolOptions } from "./pool.ts";
export { ClusterQueue, type ClusterQueueOptions } from "./queue.ts";
export { type Host, serve, type ServeOptions } from "./host.ts";
export {
  type ApplyAsyncOptions,
  AsyncResult,
  type IMapIterator,
  type MapAsyncOptions,
  type MapOptions,
  PoolCalls,
  type TaskOptions,
} from "../pool.ts";
export { BrokenPoolError, Empty, Full, ProcessError, TimeoutError } from "../errors.ts";
export type { QueueWaitOptions } from "../queues.ts";
export type { WaitOptions } from "../wait.ts";

/** Options of {@linkcode connect}. */
export interface ConnectOptions {
  /** Redis URL; `redis://127.0.0.1:6379` by default. */
  url?: string;
  /** The BullMQ queue that carries tasks, as the hosts give it; `"mp"` by default. */
  queue?: string;
  /**
   * The project root (a path or a file: URL) that hosts declare too: a task
   * in a local file under it is named by its path from there, so a host
   * running the same checkout elsewhere finds it.
   */
  root?: string | URL;
  /** How many more times a task whose host died runs again (at least once, then); 0 by default. */
  retries?: number;
  /** How long (ms) pending tasks and queue calls wait for a lost Redis before they reject; 10 s by default. */
  reconnectTimeout?: number;
}

/** What {@linkcode connect} returns: a context whose `Pool` and `Queue` live on the cluster. */
export interface Cluster {
  /** A pool whose tasks run on the hosts: `new cluster.Pool(processes?)`. */
  Pool: new (options?: number | ClusterPoolOptions) => ClusterPool;
  /** A queue in Redis: `new cluster.Queue(maxsize?, { name })`. */
  Queue: new <T = unknown>(maxsize?: number, options?: ClusterQueueOptions) => ClusterQueue<T>;
}

/**
 * A context on the cluster at `url`. Opens nothing by itself: each pool and
 * queue opens its own connections and closes them when it is closed (until
 * then they hold the program open).
 *
 * @throws {TypeError} for a URL that is not `redis://` or `rediss://`.
 * @throws {RangeError} for a negative `retries` or `reconnectTimeout`.
 *
 * @example
 * ```ts
 * const cluster = connect({ url: "redis://127.0.0.1:6379", root: "." });
 * await using pool = new cluster.Pool();
 * console.log(await pool.apply(square, [7])); // 49
 * ```
 */
export function connect(options: ConnectOptions = {}): Cluster {
  const { url = DEFAULT_URL, queue = DEFAULT_QUEUE, retries = 0 } = options;
  checkURL(url, "connect: url");
  if (!Number.isInteger(retries) || retries < 0) {
    throw new RangeError(`connect: retries must be an integer >= 0, got ${String(retries)}`);
  }
  const reconnectTimeout = readReconnectTimeout(options.reconnectTimeout, "connect");
  const settings = {
    url,
    queue,
    root: options.root === undefined ? undefined : rootURL(options.root),
    retries,
    reconnectTimeout,
  };
  return {
    Pool: class extends ClusterPool {
      constructor(options?: number | ClusterPoolOptions) {
        super(settings, options);
      }
    },
    Queue: class<T> extends ClusterQueue<T> {
      constructor(maxsize?: number, options?: ClusterQueueOptions) {
        super(url, maxsize, { reconnectTimeout, ...options });
      }
    },
  };
}
