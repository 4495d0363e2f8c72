/**
 * A worker host: takes cluster tasks from BullMQ on Redis and runs them on
 * this machine's worker threads, through this library's own `Pool` (so one
 * host uses all its cores). Start as many hosts, on as many machines, as
 * reach the same Redis.
 *
 * A host that dies mid-task is found by BullMQ's stalled-job check, run by
 * the hosts that live: its lock stops being renewed, and after
 * `lockDuration` the next check moves the job back, and the host that ran
 * the check tells the job's client, naming the host that held it. Hosts
 * fail a stalled job instead of running it again (`maxStalledCount: 0`):
 * whether to run it again is the client's `retries`.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { hostname } from "node:os";
import process from "node:process";
import { Worker } from "bullmq";
import { pickle } from "../pickle.ts";
// Through the main module: a pool worker starts by importing it (see locateLibrary).
import { BrokenPoolError, Pool } from "../../mod.ts";
import { type ReducedError, reduceError } from "../reduction.ts";
import { callerModule, describeTarget, moduleSpecifier, type TargetSpec } from "../spawn.ts";
import { closeRedis, DEFAULT_URL, openRedis } from "./redis.ts";
import { taskModule } from "./task.ts";
import {
  cancelMessage,
  DEFAULT_QUEUE,
  fromBase64,
  type JobData,
  type JobNotice,
  keys,
  localModule,
  rootURL,
  type WireOutcome,
} from "./protocol.ts";

/** Options of {@linkcode serve}. */
export interface ServeOptions {
  /** Redis URL; `redis://127.0.0.1:6379` by default. */
  url?: string;
  /** The BullMQ queue's name, as the clients give it; `"mp"` by default. */
  queue?: string;
  /** This host's name in errors and in BullMQ (`processedBy`); host name and pid by default. */
  name?: string;
  /** Local worker threads; `cpuCount()` by default. */
  processes?: number;
  /** Runs once in each local worker, as the local pool's. */
  // deno-lint-ignore no-explicit-any
  initializer?: ((...args: any[]) => unknown) | string;
  /** Arguments for `initializer`. */
  initargs?: readonly unknown[];
  /** The module that exports `initializer` when it is given by name. */
  module?: string | URL;
  /** A local worker is replaced after this many tasks, as the local pool's. */
  maxtasksperchild?: number | null;
  /** The most heap (MiB) a local worker may use, as the local pool's (enforced on Node). */
  memoryLimit?: number;
  /** The project root that clients name local files against (a path or a file: URL). */
  root?: string | URL;
  /** BullMQ jobs at once; twice `processes` by default, so every worker has the next job at hand. */
  concurrency?: number;
  /** How long (ms) a job stays locked without renewal before a dead host is assumed; 30 s by default. */
  lockDuration?: number;
  /** How often (ms) this host looks for jobs of dead hosts; `lockDuration` by default. */
  stalledInterval?: number;
}

/** A running host, as {@linkcode serve} returns it. */
export interface Host extends AsyncDisposable {
  /** Its name, as errors and BullMQ show it. */
  readonly name: string;
  /** Finishes the jobs it holds, then stops. */
  close(): Promise<void>;
}

/** How often a host says it is alive, and how long clients believe it. */
export const HEARTBEAT_MS = 1_000;
/** How long a cancellation is remembered, for a task that a host has not picked up yet. */
const CANCEL_MEMORY_MS = 10 * 60_000;

/**
 * Starts a worker host and resolves once it takes jobs.
 *
 * @example
 * ```ts
 * import { serve } from "@mp/multiprocessing/cluster";
 *
 * const host = await serve({ url: "redis://127.0.0.1:6379", processes: 4, root: "." });
 * // … until the host should stop:
 * await host.close();
 * ```
 */
export async function serve(options: ServeOptions = {}): Promise<Host> {
  const url = options.url ?? DEFAULT_URL;
  const queue = options.queue ?? DEFAULT_QUEUE;
  const name = options.name ?? `${hostname()}:${process.pid}`;
  const root = options.root === undefined ? undefined : rootURL(options.root);
  const userModule = moduleSpecifier(options.module, callerModule());
  const initializer: TargetSpec | null = options.initializer === undefined
    ? null
    : describeTarget(options.initializer, userModule, "serve: initializer");
  const pool = new Pool({
    processes: options.processes,
    module: taskModule,
    initializer: "initClusterHost",
    initargs: [name, initializer, options.initargs ?? []],
    maxtasksperchild: options.maxtasksperchild,
    memoryLimit: options.memoryLimit,
  });
  const processes = options.processes ?? Number(/pool_size=(\d+)/.exec(String(pool))![1]);
  const concurrency = options.concurrency ?? 2 * processes;
  const redis = openRedis(url);
  const subscriber = openRedis(url);
  const names = keys("bull", queue);

  /** Tasks running here, by their cancellation key; and cancellations heard, with when. */
  const running = new Map<string, AbortController>();
  const cancelled = new Map<string, number>();
  subscriber.on("message", (_channel: string, message: string) => {
    const now = Date.now();
    cancelled.set(message, now);
    running.get(message)?.abort(new Error("the task was cancelled by its client"));
    for (const [key, at] of cancelled) {
      if (now - at < CANCEL_MEMORY_MS) break;
      cancelled.delete(key);
    }
  });
  await subscriber.subscribe(names.cancel);

  const runJob = async (data: JobData, jobId: string): Promise<void> => {
    let outbox: WireOutcome[] = [];
    let sending: Promise<unknown> = Promise.resolve();
    let timer: ReturnType<typeof setTimeout> | undefined;
    /** Tasks of the job without an outcome yet: the one that ends it sends at once, with no timer in its way. */
    let left = data.tasks.length;
    /** Sends the outcomes so far; the `last` send of the job also forgets who holds it, in the same round trip. */
    const send = (last = false) => {
      clearTimeout(timer);
      timer = undefined;
      if (outbox.length === 0) {
        if (last) sending = sending.then(() => redis.hdel(names.holders, jobId));
        return;
      }
      const bytes = Buffer.from(pickle(outbox, "results"));
      outbox = [];
      const key = names.results(data.client);
      // A client that has gone away leaves no list behind for long.
      const batch = redis.multi().rpush(key, bytes).pexpire(key, 3_600_000);
      if (last) batch.hdel(names.holders, jobId);
      sending = sending.then(() => batch.exec());
    };
    /** One task is over, with its outcome or without one (cancelled before it started). */
    const finish = (outcome?: WireOutcome) => {
      if (outcome) outbox.push(outcome);
      // The job's last outcome goes now. The others wait a turn for their siblings that end in the same one:
      // one RPUSH for many (a job carries up to 64 applies).
      if (--left === 0) send(true);
      else if (outcome && timer === undefined) timer = setTimeout(() => send(), 0);
    };
    let fns: TargetSpec[];
    try {
      fns = data.fns.map((spec) => ({ ...spec, module: localModule(spec.module, root, name) }));
    } catch (error) {
      for (const [id] of data.tasks) finish([id, false, reduceError(error)]);
      return void await sending;
    }
    await Promise.all(data.tasks.map(async ([id, fn, mode, payload]) => {
      const key = cancelMessage(data.client, id);
      if (cancelled.has(key)) return finish();
      const controller = new AbortController();
      running.set(key, controller);
      let outcome: WireOutcome;
      try {
        const value = await pool.apply("runClusterTask", [fns[fn], mode, fromBase64(payload)], {
          signal: controller.signal,
        });
        outcome = value instanceof Uint8Array ? [id, true, value] : [id, false, value as ReducedError];
      } catch (error) {
        if (error instanceof BrokenPoolError) error.message = `on host ${name}: ${error.message}`;
        outcome = [id, false, reduceError(error)];
      } finally {
        running.delete(key);
      }
      finish(outcome);
    }));
    if (data.tasks.length === 0) send(true);
    await sending;
  };

  const lockDuration = options.lockDuration ?? 30_000;
  const worker = new Worker(queue, async (job) => {
    // Who holds the job, for a client to name if this host dies with it (BullMQ's processedBy is
    // overwritten by the next host to touch the job). Not awaited: it is off the task's path. The job's
    // last results forget it (one command fewer per job: the next task's pick-up starts right then).
    redis.hset(names.holders, job.id!, name).catch(() => {});
    try {
      await runJob(job.data as JobData, job.id!);
    } catch (error) {
      redis.hdel(names.holders, job.id!).catch(() => {});
      throw error;
    }
  }, {
    connection: redis,
    name,
    concurrency,
    lockDuration,
    stalledInterval: options.stalledInterval ?? lockDuration,
    maxStalledCount: 0,
    autorun: false,
  });
  worker.on("error", () => {});
  /**
   * Tells a job's client what BullMQ did to it, in the client's list (see JobNotice): the client reads no
   * BullMQ event stream. `client` is looked up in the job when not known.
   */
  const notify = async (jobId: string, notice: (holder: string) => JobNotice, client?: string) => {
    const [data, holder] = await redis.multi().hget(names.job(jobId), "data").hget(names.holders, jobId)
      .hdel(names.holders, jobId).exec() ?? [];
    client ??= (JSON.parse(String(data?.[1] ?? "{}")) as Partial<JobData>).client;
    if (typeof client !== "string") return;
    const key = names.results(client);
    const bytes = Buffer.from(pickle(notice(String(holder?.[1] ?? "unknown")), "notice"));
    await redis.multi().rpush(key, bytes).pexpire(key, 3_600_000).exec();
  };
  // This host's stalled-job check found a job whose host stopped renewing its lock.
  worker.on(
    "stalled",
    (jobId: string) => void notify(jobId, (holder) => ({ job: jobId, stalled: holder })).catch(() => {}),
  );
  worker.on("failed", (job, error) => {
    if (!job?.id) return;
    const failed = job.failedReason || error.message;
    void notify(job.id, () => ({ job: job.id!, failed }), (job.data as Partial<JobData>)?.client).catch(() => {});
  });
  const beat = () => redis.hset(names.hosts, name, JSON.stringify({ processes, seen: Date.now() })).catch(() => {});
  await beat();
  const heartbeat = setInterval(beat, HEARTBEAT_MS);
  void worker.run();
  await worker.waitUntilReady();

  let closing: Promise<void> | undefined;
  const close = () =>
    closing ??= (async () => {
      clearInterval(heartbeat);
      await worker.close();
      await redis.hdel(names.hosts, name).catch(() => {});
      pool.close();
      await pool.join();
      await closeRedis(subscriber);
      await closeRedis(redis);
    })();
  return { name, close, [Symbol.asyncDispose]: close };
}
