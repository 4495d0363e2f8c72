/**
 * The cluster pool on Redis (loopback, no persistence) with two worker-host
 * processes, beside BullMQ used directly on the same Redis in the same run:
 * one job per item, `addBulk`, and two `Worker` processes with the same
 * concurrency as our hosts' (2 jobs at a time each). Figures: 10,000 tiny
 * tasks in flight, `map` of 100,000 tiny items, one task at a time, and a
 * CPU-bound map on one host process against two.
 *
 * Run: deno run -A bench/cluster.ts | bun bench/cluster.ts | node bench/cluster.ts
 * (the hosts and BullMQ's workers always run on Node; the client is this runtime).
 */
import { spawn } from "node:child_process";
import process from "node:process";
import { Queue, QueueEvents, Worker } from "bullmq";
import { Redis } from "ioredis";
import { connect } from "../src/cluster/mod.ts";
import {
  type Child,
  hostCommands,
  redisMissing,
  root,
  startHost,
  startRedis,
} from "../tests/fixtures/cluster_redis.ts";

const module = new URL("../tests/fixtures/cluster_tasks.ts", import.meta.url);
const CONCURRENCY = 2;
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

function row(name: string, unit: string, better: "higher" | "lower", ours: number, against: Record<string, number>) {
  console.log(JSON.stringify({ area: "cluster", name, unit, better, ours: round(ours), against, notes: undefined }));
}
const round = (x: number) => Number(x.toPrecision(3));

/** BullMQ used directly: a worker process that adds one to each job's number. */
async function directWorker(url: string, queue: string): Promise<void> {
  const connection = new Redis(url, { maxRetriesPerRequest: null });
  const worker = new Worker(queue, (job) => Promise.resolve((job.data as { x: number }).x + 1), {
    connection,
    concurrency: CONCURRENCY,
  });
  await worker.waitUntilReady();
  console.log("host direct ready");
  process.once("SIGTERM", () => void worker.close().then(() => process.exit(0)));
}

function startDirect(url: string, queue: string): Promise<Child> {
  return new Promise((resolve, reject) => {
    const child = spawn(hostCommands.node[0], [new URL(import.meta.url).pathname, "direct-worker", url, queue], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let text = "";
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      text += chunk;
      if (text.includes("ready")) {
        resolve({
          process: child,
          output: () => text,
          waitFor: () => Promise.resolve(),
          kill: async () => {
            child.kill("SIGKILL");
            await new Promise((r) => child.once("exit", r));
          },
        });
      }
    });
    child.once("exit", (code) => reject(new Error(`the direct worker exited (${code})`)));
  });
}

/** Adds `n` jobs with addBulk and waits until all are completed; returns seconds. */
async function directBulk(jobs: Queue, events: QueueEvents, n: number): Promise<number> {
  let done = 0;
  const all = Promise.withResolvers<void>();
  const onCompleted = () => {
    if (++done === n) all.resolve();
  };
  events.on("completed", onCompleted);
  const start = performance.now();
  for (let at = 0; at < n; at += 10_000) {
    await jobs.addBulk(
      range(Math.min(10_000, n - at)).map((i) => ({
        name: "inc",
        data: { x: at + i },
        opts: { removeOnComplete: true },
      })),
    );
  }
  await all.promise;
  events.off("completed", onCompleted);
  return (performance.now() - start) / 1000;
}

async function main(): Promise<void> {
  if (redisMissing) {
    console.error(redisMissing);
    process.exit(1);
  }
  const redis = await startRedis();
  const url = redis.url;
  const children: Child[] = [redis];
  try {
    const host = (queue: string, name: string) =>
      startHost("node", ["--url", url, "--queue", queue, "--processes", "1", "--name", name]);
    children.push(await host("mp", "h1"), await host("mp", "h2"));
    children.push(await startDirect(url, "direct"), await startDirect(url, "direct"));
    const cluster = connect({ url, root });
    await using pool = new cluster.Pool({ module });
    const connection = new Redis(url, { maxRetriesPerRequest: null });
    const jobs = new Queue("direct", { connection });
    const events = new QueueEvents("direct", { connection: connection.duplicate() });
    await events.waitUntilReady();
    await pool.map("inc", range(1000));
    await directBulk(jobs, events, 1000);

    // 10,000 tiny tasks in flight.
    let start = performance.now();
    await Promise.all(range(10_000).map((i) => pool.apply("inc", [i])));
    const oursInFlight = 10_000 / ((performance.now() - start) / 1000);
    const directInFlight = 10_000 / await directBulk(jobs, events, 10_000);
    row("10,000 tiny tasks in flight", "tasks/s", "higher", oursInFlight, { "BullMQ direct": round(directInFlight) });

    // map of 100,000 tiny items.
    start = performance.now();
    await pool.map("inc", range(100_000));
    const oursMap = 100_000 / ((performance.now() - start) / 1000);
    const directMap = 100_000 / await directBulk(jobs, events, 100_000);
    row("map of 100,000 tiny items", "items/s", "higher", oursMap, {
      "BullMQ direct, one job per item": round(directMap),
    });

    // One task at a time.
    const TRIPS = 200;
    const ours: number[] = [];
    for (let i = 0; i < TRIPS; i++) {
      const t = performance.now();
      await pool.apply("inc", [i]);
      ours.push(performance.now() - t);
    }
    const direct: number[] = [];
    for (let i = 0; i < TRIPS; i++) {
      const t = performance.now();
      const job = await jobs.add("inc", { x: i }, { removeOnComplete: 1000 });
      await job.waitUntilFinished(events, 10_000);
      direct.push(performance.now() - t);
    }
    const median = (xs: number[]) => xs.sort((a, b) => a - b)[xs.length >> 1];
    row("one task at a time (median round trip)", "ms", "lower", median(ours), {
      "BullMQ direct (add + waitUntilFinished)": round(median(direct)),
    });
    await events.close();
    await jobs.close();
    connection.disconnect();

    // CPU-bound map: 40 items of 25 ms on one host process, then on two.
    const cpu = async (queue: string, hosts: number) => {
      for (let h = 0; h < hosts; h++) children.push(await host(queue, `${queue}-${h}`));
      const context = connect({ url, root, queue });
      await using cpuPool = new context.Pool({ module });
      await cpuPool.map("spin", [1, 1]);
      const t = performance.now();
      await cpuPool.map("spin", range(40).map(() => 25));
      return (performance.now() - t) / 1000;
    };
    const one = await cpu("cpu1", 1);
    const two = await cpu("cpu2", 2);
    row("CPU-bound map, 40 × 25 ms: 1 → 2 host processes", "speedup", "higher", one / two, { "ideal": 2 });
  } finally {
    for (const child of children.reverse()) await child.kill();
  }
}

if (process.argv[2] === "direct-worker") await directWorker(process.argv[3], process.argv[4]);
// exit: a connection BullMQ was lent (the QueueEvents' duplicate) keeps reconnecting to the stopped Redis for ever.
else await main().then(() => process.exit(0));
