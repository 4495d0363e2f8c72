/**
 * `ClusterPool`: the local `Pool`'s surface, with its tasks run by worker
 * hosts (`serve`) on any machine that reaches the same Redis, through BullMQ.
 *
 * Tasks submitted in one turn of the event loop travel together, up to
 * {@linkcode BATCH} to a BullMQ job (a job costs several Redis round trips;
 * a task inside one costs bytes), and a `map` is cut into chunks by Python's
 * rule, about four per process of the live hosts. Results come back in a
 * Redis list only this client reads, and so does word of a job that BullMQ
 * found stalled or failed (from the host that saw it): the client reads no
 * BullMQ event stream, whose five entries a job each woke it (dropping that
 * stream cut a lone task's round trip by 2 to 15 % in four interleaved runs, load 2 to 7).
 *
 * Faults: a host that dies mid-task is found by BullMQ's stalled-job check
 * (its lock expires): the task rejects with `BrokenPoolError` naming the host,
 * or with `retries` runs again (at least once: a host that had finished the
 * task but died before BullMQ heard may have run it already). When Redis goes
 * away, pending tasks wait for it `reconnectTimeout` ms, then reject; when
 * it comes back without its data (a restart without persistence), they
 * reject at once, as the jobs they were are gone.
 *
 * @module
 */
import { Queue as JobQueue } from "bullmq";
import { randomUUID } from "node:crypto";
import { cpuCount } from "../context.ts";
import { BrokenPoolError } from "../errors.ts";
import { pickle, unpickle } from "../pickle.ts";
import { Limit } from "../pool/limit.ts";
import { readProcesses } from "../pool/options.ts";
import { deliver, type Outcome } from "../pool/results.ts";
import { attachRoute, PoolCalls, type TaskRoute } from "../pool/surface.ts";
import { type ReducedError, reviveError } from "../reduction.ts";
import { callerModule, describeTarget, moduleSpecifier, type TargetSpec } from "../spawn.ts";
import type { Wait } from "../wait.ts";
import { HEARTBEAT_MS } from "./host.ts";
import {
  APPLY,
  cancelMessage,
  type JobData,
  type JobNotice,
  keys,
  type Mode,
  portableModule,
  toBase64,
  type WireOutcome,
  type WireTask,
} from "./protocol.ts";
import { OutageClock } from "./outage.ts";
import { closeRedis, openRedis } from "./redis.ts";

/** Where a cluster lives: what `connect()` was given, resolved. */
export interface ClusterSettings {
  url: string;
  queue: string;
  root: string | undefined;
  retries: number;
  reconnectTimeout: number;
}

/** Options of a cluster pool, as the local pool's where they apply. */
export interface ClusterPoolOptions {
  /** Processes to assume for chunking while no host is known yet; `cpuCount()` by default. */
  processes?: number;
  /** The module that exports the task functions named by string. */
  module?: string | URL;
  /** How many more times a task whose host died runs again; the cluster's `retries` by default. */
  retries?: number;
}

/** The most tasks that travel in one BullMQ job. */
export const BATCH = 64;
interface Task {
  id: number;
  fn: number;
  mode: Mode;
  data: string;
  to: Outcome;
  done: boolean;
  /** The BullMQ job it travels in, once sent. */
  job?: string;
  retries: number;
  limit?: Limit;
}

const RUN = 0;
const CLOSE = 1;
const TERMINATE = 2;

/**
 * A pool whose workers are the hosts serving a Redis, with the local
 * `Pool`'s methods; make it with `connect(…).Pool`.
 *
 * @example
 * ```ts
 * import { connect } from "@mp/multiprocessing/cluster";
 *
 * export const square = (x: number) => x * x;
 *
 * if (import.meta.main) {
 *   const cluster = connect({ url: "redis://127.0.0.1:6379", root: "." });
 *   await using pool = new cluster.Pool();
 *   console.log(await pool.map(square, [1, 2, 3])); // [1, 4, 9]
 * }
 * ```
 */
export class ClusterPool extends PoolCalls implements AsyncDisposable {
  #state: typeof RUN | typeof CLOSE | typeof TERMINATE = RUN;
  readonly #settings: ClusterSettings;
  readonly #module: string | undefined;
  readonly #retries: number;
  readonly #client = randomUUID();
  readonly #keys: ReturnType<typeof keys>;
  readonly #redis;
  readonly #results;
  readonly #jobs: JobQueue;
  readonly #ready: Promise<unknown>;
  #fnIds = new Map<unknown, number>();
  #specs: TargetSpec[] = [];
  #tasks = new Map<number, Task>();
  #jobTasks = new Map<string, Set<number>>();
  #pending: Task[] = [];
  #flushQueued = false;
  #nextId = 0;
  /** Processes of the hosts seen alive lately; refreshed while the pool runs. */
  #hostProcesses: number;
  #refresher: ReturnType<typeof setInterval>;
  /** How long Redis has been gone: after reconnectTimeout, every unfinished task rejects. */
  readonly #outage: OutageClock;
  #finished = Promise.withResolvers<void>();
  #closing: Promise<void> | undefined;

  /**
   * Connects to the cluster's Redis. Use `connect(…).Pool` rather than this.
   *
   * @throws {RangeError} for a size or `retries` that is not a whole number.
   */
  constructor(settings: ClusterSettings, options: number | ClusterPoolOptions = {}) {
    super();
    attachRoute(this, this.#route());
    const given: ClusterPoolOptions = typeof options === "number" ? { processes: options } : options ?? {};
    const { processes = cpuCount(), retries = settings.retries } = given;
    readProcesses(processes);
    if (!Number.isInteger(retries) || retries < 0) {
      throw new RangeError(`new Pool: retries must be an integer >= 0, got ${String(retries)}`);
    }
    this.#settings = settings;
    this.#module = given.module === undefined ? undefined : moduleSpecifier(given.module, callerModule());
    this.#retries = retries;
    this.#hostProcesses = processes;
    this.#keys = keys("bull", settings.queue);
    this.#redis = openRedis(settings.url);
    this.#results = openRedis(settings.url);
    this.#jobs = new JobQueue(settings.queue, { connection: this.#redis });
    this.#jobs.on("error", () => {});
    this.#ready = this.#refreshHosts();
    this.#ready.catch(() => {});
    this.#refresher = setInterval(() => void this.#refreshHosts(), HEARTBEAT_MS);
    const ms = settings.reconnectTimeout;
    this.#outage = new OutageClock(ms, () => {
      this.#failAll(
        new BrokenPoolError(`lost the connection to Redis at ${settings.url} for ${ms} ms (reconnectTimeout)`),
      );
    });
    this.#redis.on("close", () => this.#lost());
    this.#redis.on("ready", () => void this.#regained());
    void this.#listen();
  }

  /** Accepts no more tasks; `join()` then waits for the submitted ones. */
  close(): void {
    if (this.#state !== RUN) return;
    this.#state = CLOSE;
    this.#checkFinished();
  }

  /** Rejects every unfinished task with `BrokenPoolError` and cancels those running on hosts. */
  terminate(): void {
    if (this.#state === TERMINATE) return;
    this.#state = TERMINATE;
    this.#failAll(new BrokenPoolError("the pool was terminated before this task finished"));
    this.#checkFinished();
  }

  /**
   * Waits until every task is settled and the pool's connections are closed.
   *
   * @throws {Error} while the pool is still running.
   */
  async join(): Promise<void> {
    if (this.#state === RUN) {
      throw new Error("Pool.join(): the pool is still running; call close() or terminate() first");
    }
    await this.#finished.promise;
    await this.#shutdown();
  }

  /** `await using pool = new cluster.Pool()`: terminates the pool and closes its connections. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.terminate();
    await this.join();
  }

  /** Shows the state and the cluster, as the local pool's repr. */
  override toString(): string {
    return `<ClusterPool state=${["RUN", "CLOSE", "TERMINATE"][this.#state]} queue=${this.#settings.queue}>`;
  }

  /** What the surface (src/pool/surface.ts) needs: how this pool's tasks reach the hosts. */
  #route(): TaskRoute<string> {
    return {
      checkRunning: (what) => {
        if (this.#state !== RUN) throw new Error(`Pool.${what}: the pool is not running (it was closed or terminated)`);
      },
      fnId: (fn, what) => this.#fnId(fn, what),
      // Python's rule for the chunksize, over the processes of every live host.
      processes: () => this.#hostProcesses,
      packArgs: (args) => toBase64(pickle(args, "args")),
      packChunk,
      submit: (fn, mode, data, to, wait) => this.#submit(fn, mode, data, to, wait),
      // An imap goes on reading as its reader asks after close(); join() waits for the tasks submitted.
      closed: () => false,
      terminated: () => this.#state === TERMINATE,
      reading: () => {},
    };
  }

  #fnId(fn: unknown, what: string): number {
    let id = this.#fnIds.get(fn);
    if (id === undefined) {
      const spec = describeTarget(fn, this.#module ?? (typeof fn === "function" ? callerModule() : undefined), what);
      spec.module = portableModule(spec.module, this.#settings.root);
      id = this.#specs.push(spec) - 1;
      this.#fnIds.set(fn, id);
    }
    return id;
  }

  #submit(fn: number, mode: Mode, data: string, to: Task["to"], wait: Wait | undefined): void {
    const task: Task = { id: this.#nextId++, fn, mode, data, to, done: false, retries: this.#retries };
    this.#tasks.set(task.id, task);
    this.#pending.push(task);
    if (wait) task.limit = Limit.arm(wait, (reason) => this.#expire(task, reason));
    if (!this.#flushQueued) {
      this.#flushQueued = true;
      queueMicrotask(() => void this.#flush());
    }
  }

  /** A task's timeout or signal fired: it rejects here, and a host running it stops it. */
  #expire(task: Task, reason: unknown): void {
    if (task.done) return;
    const sent = task.job !== undefined;
    this.#settle(task, false, reason);
    if (sent) this.#redis.publish(this.#keys.cancel, cancelMessage(this.#client, task.id)).catch(() => {});
  }

  #settle(task: Task, ok: boolean, value: unknown): void {
    if (task.done) return;
    task.done = true;
    task.limit?.disarm();
    this.#tasks.delete(task.id);
    if (task.job !== undefined) {
      const siblings = this.#jobTasks.get(task.job);
      siblings?.delete(task.id);
      if (siblings?.size === 0) this.#jobTasks.delete(task.job);
    }
    deliver(task.to, ok, value);
    this.#checkFinished();
  }

  /** Sends the pending tasks as BullMQ jobs: applies up to BATCH to a job, each chunk its own job. */
  async #flush(): Promise<void> {
    this.#flushQueued = false;
    const tasks = this.#pending.filter((task) => !task.done);
    this.#pending = [];
    if (tasks.length === 0) return;
    const { reconnectTimeout, url } = this.#settings;
    if (this.#outage.expired) {
      const error = new BrokenPoolError(
        `no connection to Redis at ${url} for ${reconnectTimeout} ms (reconnectTimeout)`,
      );
      for (const task of tasks) this.#settle(task, false, error);
      return;
    }
    const groups: Task[][] = [];
    let applies: Task[] = [];
    for (const task of tasks) {
      if (task.mode !== APPLY) groups.push([task]);
      else if (applies.push(task) === BATCH) (groups.push(applies), applies = []);
    }
    if (applies.length) groups.push(applies);
    const jobs = groups.map((group) => {
      const fns: TargetSpec[] = [];
      const index = new Map<number, number>();
      const wire: WireTask[] = group.map((task) => {
        let at = index.get(task.fn);
        if (at === undefined) index.set(task.fn, at = fns.push(this.#specs[task.fn]) - 1);
        return [task.id, at, task.mode, task.data];
      });
      const data: JobData = { client: this.#client, fns, tasks: wire };
      return { name: "task", data, opts: { removeOnComplete: true, removeOnFail: { age: 3600 } } };
    });
    try {
      await this.#ready;
      // One job (a lone task, or one chunk) through add(): addBulk builds a pipeline around it, measured 0.03 to
      // 0.1 ms more per call on this 2-core VM, all of it on the path of a caller that awaits each task.
      const added = jobs.length === 1
        ? [await this.#jobs.add(jobs[0].name, jobs[0].data, jobs[0].opts)]
        : await this.#jobs.addBulk(jobs);
      added.forEach((job, g) => {
        const ids = new Set<number>();
        for (const task of groups[g]) {
          if (task.done) continue;
          task.job = job.id!;
          ids.add(task.id);
        }
        if (ids.size) this.#jobTasks.set(job.id!, ids);
      });
    } catch (error) {
      for (const task of tasks) {
        this.#settle(
          task,
          false,
          new BrokenPoolError(`could not queue the task on Redis at ${this.#settings.url}`, {
            cause: error,
          }),
        );
      }
    }
  }

  /**
   * Reads outcomes from this client's list until the pool shuts down: on Redis 7 and later with BLMPOP, which
   * takes a batch and every one queued behind it in one round trip; before that, BLPOP for one and LPOP for the
   * rest, a second round trip (and wake-up of this client) per batch.
   */
  async #listen(): Promise<void> {
    const key = this.#keys.results(this.#client);
    let blmpop = true;
    while (this.#closing === undefined) {
      try {
        if (blmpop) {
          const got = await this.#results.blmpopBuffer(0, 1, key, "LEFT", "COUNT", 1_000);
          for (const bytes of got?.[1] ?? []) this.#receive(bytes);
          continue;
        }
        const got = await this.#results.blpopBuffer(key, 0);
        if (!got) continue;
        this.#receive(got[1]);
        const more = await this.#results.lpopBuffer(key, 1_000);
        for (const bytes of more ?? []) this.#receive(bytes);
      } catch (error) {
        if (this.#closing !== undefined) return;
        // Redis before 7 does not know BLMPOP ("ERR unknown command 'blmpop'").
        if (blmpop && /unknown command/i.test(String((error as Error)?.message))) {
          blmpop = false;
          continue;
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }

  #receive(buffer: Uint8Array): void {
    // A plain view: unpickle slices its input, and Buffer's slice() shares memory instead of copying.
    const bytes = new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
    let got: WireOutcome[] | JobNotice;
    try {
      got = unpickle(bytes) as WireOutcome[] | JobNotice;
    } catch {
      // Not this library's bytes: skipped, so that the entries read with it in one BLMPOP still count.
      return;
    }
    if (got === null || typeof got !== "object") return;
    if (!Array.isArray(got)) {
      if (got.stalled !== undefined) this.#stalled(got.job, got.stalled);
      else if (got.failed !== undefined) this.#failedJob(got.job, got.failed);
      return;
    }
    for (const outcome of got) {
      if (!Array.isArray(outcome)) continue;
      let [id, ok, value] = outcome;
      const task = this.#tasks.get(id);
      if (!task) continue;
      let revived: unknown;
      try {
        revived = ok ? unpickle(value as Uint8Array) : reviveError(value as ReducedError);
      } catch (error) {
        // A result this runtime cannot read (or garbled bytes): the task rejects with why.
        (ok = false, revived = error);
      }
      this.#settle(task, ok, revived);
    }
  }

  /** BullMQ found a job whose host (`host`) stopped renewing its lock: its tasks run again or fail. */
  #stalled(jobId: string, host: string): void {
    const ids = this.#jobTasks.get(jobId);
    if (!ids) return;
    this.#jobTasks.delete(jobId);
    for (const id of ids) {
      const task = this.#tasks.get(id);
      if (!task || task.done) continue;
      task.job = undefined;
      if (task.retries > 0) {
        task.retries--;
        this.#pending.push(task);
        if (!this.#flushQueued) (this.#flushQueued = true, queueMicrotask(() => void this.#flush()));
      } else {
        this.#settle(
          task,
          false,
          new BrokenPoolError(`the worker host ${host} stopped (it died or lost Redis) while it ran this task`),
        );
      }
    }
  }

  /** A job failed in BullMQ itself (not in the task, whose errors come back as outcomes). */
  #failedJob(jobId: string, reason: string): void {
    const ids = this.#jobTasks.get(jobId);
    if (!ids) return;
    for (const id of [...ids]) {
      const task = this.#tasks.get(id);
      if (task) this.#settle(task, false, new BrokenPoolError(`the task's BullMQ job failed: ${reason}`));
    }
  }

  async #refreshHosts(): Promise<void> {
    const hosts = await this.#redis.hgetall(this.#keys.hosts).catch(() => ({}));
    let processes = 0;
    const now = Date.now();
    for (const text of Object.values(hosts)) {
      try {
        const { processes: n, seen } = JSON.parse(text);
        if (now - seen < 3 * HEARTBEAT_MS) processes += n;
      } catch {
        // A garbled entry counts for nothing.
      }
    }
    if (processes > 0) this.#hostProcesses = processes;
  }

  /** The connection to Redis dropped: tasks wait for it, up to `reconnectTimeout`. */
  #lost(): void {
    if (this.#closing === undefined) this.#outage.lost();
  }

  /** Redis is back: if it lost its data, the jobs are gone and their tasks reject now. */
  async #regained(): Promise<void> {
    const marker = `${this.#keys.hosts}:client:${this.#client}`;
    if (!this.#outage.regained()) {
      await this.#redis.set(marker, "1", "PX", 86_400_000).catch(() => {});
      return;
    }
    const kept = await this.#redis.exists(marker).catch(() => 0);
    if (kept) return;
    this.#failAll(
      new BrokenPoolError(`Redis at ${this.#settings.url} came back without its data: the queued tasks are gone`),
    );
    await this.#redis.set(marker, "1", "PX", 86_400_000).catch(() => {});
  }

  #failAll(error: Error): void {
    const sent = [...this.#tasks.values()].filter((task) => task.job !== undefined);
    for (const task of [...this.#tasks.values()]) this.#settle(task, false, error);
    for (const task of sent) {
      this.#redis.publish(this.#keys.cancel, cancelMessage(this.#client, task.id)).catch(() => {});
    }
  }

  #checkFinished(): void {
    if (this.#state !== RUN && this.#tasks.size === 0) this.#finished.resolve();
  }

  #shutdown(): Promise<void> {
    return this.#closing ??= (async () => {
      clearInterval(this.#refresher);
      this.#outage.stop();
      this.#results.disconnect();
      // BullMQ's setup of the connection it was given (a version check, INFO) must end before that connection
      // does, or something in it rejects unhandled (seen: a pool joined at once, "Connection is closed."); with
      // Redis gone, waited for at most a second.
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        this.#jobs.waitUntilReady().catch(() => {}),
        new Promise((resolve) => timer = setTimeout(resolve, 1_000)),
      ]);
      clearTimeout(timer);
      await this.#jobs.close().catch(() => {});
      await closeRedis(this.#redis);
    })();
  }
}

/** `source[start, end)` as base64 bytes; an item that cannot be sent is named by its index in the input. */
function packChunk(source: readonly unknown[], start: number, end: number, index: number): string {
  const items = source.slice(start, end);
  try {
    return toBase64(pickle(items, "iterable"));
  } catch (error) {
    for (let k = 0; k < items.length; k++) pickle(items[k], `iterable[${index + k}]`);
    throw error;
  }
}
