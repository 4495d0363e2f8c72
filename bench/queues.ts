/**
 * Queue one-way throughput (worker → main, worker → worker) and Pipe
 * round-trip latency, beside raw `postMessage` / `MessageChannel` measured in
 * the same run (bench/raw/) and Python 3.11's multiprocessing
 * (bench/python/queues.py, bench/python/pipe.py). Same workload as those:
 * 100 000 `{ i, s: "x" }` objects one way; 10 000 round trips after 1 000
 * unrecorded ones. Seven runs after one unrecorded run (bench/measure.ts).
 *
 * Run: deno run -A bench/queues.ts | bun bench/queues.ts | node bench/queues.ts
 */
import { type Connection, Pipe, Process, Queue } from "../mod.ts";
import { pingpong } from "./raw/pingpong.ts";
import { postmessage } from "./raw/postmessage.ts";
import { printRow, pythonSamples, RUNS, sample, samplesOf } from "./measure.ts";

const N = 100_000;
const TRIPS = 10_000;
const WARMUP_TRIPS = 1_000;
const TIMEOUT = 60_000;

type Item = { i: number; s: string };

/** Cells shared with the children: [0] go flag, then a Float64 for the consumer's seconds. */
function control(): { go: Int32Array; seconds: Float64Array } {
  const buffer = new SharedArrayBuffer(16);
  return { go: new Int32Array(buffer, 0, 1), seconds: new Float64Array(buffer, 8, 1) };
}

function waitForGo(go: Int32Array): void {
  while (Atomics.load(go, 0) === 0) Atomics.wait(go, 0, 0, 1_000);
}

/** In a child: waits for the go flag, then puts `n` items. */
export function produce(q: Queue<Item>, n: number, go: Int32Array): void {
  waitForGo(go);
  for (let i = 0; i < n; i++) q.putSync({ i, s: "x" });
}

/** In a child: takes `n` items, timing from the go flag, and writes the seconds into `seconds`. */
export function consume(q: Queue<Item>, n: number, go: Int32Array, seconds: Float64Array): void {
  waitForGo(go);
  const t0 = performance.now();
  let last: Item | undefined;
  for (let k = 0; k < n; k++) last = q.getSync({ timeout: TIMEOUT });
  seconds[0] = (performance.now() - t0) / 1_000;
  if (last?.i !== n - 1) throw new Error(`the consumer saw ${JSON.stringify(last)} last`);
}

/** In a child: sends back whatever arrives, until a `null`. */
export async function echo(conn: Connection<Item | null>): Promise<void> {
  for (let message = conn.recvSync(); message !== null; message = conn.recvSync()) await conn.send(message);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function start(target: string, args: unknown[]): Process {
  const p = new Process({ target, args });
  p.start();
  return p;
}

async function ended(p: Process): Promise<void> {
  await p.join(TIMEOUT);
  if (p.exitCode !== 0) throw new Error(`${p.name} ended with exit code ${p.exitCode}`);
}

async function workerToMain(): Promise<number> {
  const q = new Queue<Item>();
  const { go } = control();
  const producer = start("produce", [q, N, go]);
  await sleep(200); // the child is up: start-up is not measured
  const t0 = performance.now();
  Atomics.store(go, 0, 1);
  Atomics.notify(go, 0);
  let last: Item | undefined;
  for (let k = 0; k < N; k++) last = await q.get({ timeout: TIMEOUT });
  const elapsed = performance.now() - t0;
  if (last?.i !== N - 1) throw new Error(`main saw ${JSON.stringify(last)} last`);
  await ended(producer);
  return N / (elapsed / 1_000);
}

async function workerToWorker(): Promise<number> {
  const q = new Queue<Item>();
  const { go, seconds } = control();
  const consumer = start("consume", [q, N, go, seconds]);
  const producer = start("produce", [q, N, go]);
  await sleep(200);
  Atomics.store(go, 0, 1);
  Atomics.notify(go, 0);
  await Promise.all([ended(consumer), ended(producer)]);
  return N / seconds[0];
}

async function roundTrips(conn: Connection<Item | null>, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    await conn.send({ i, s: "x" });
    if ((await conn.recv())?.i !== i) throw new Error("the echo came back out of order");
  }
}

async function pipeLatency(): Promise<number[]> {
  const [here, there] = Pipe<Item | null>();
  const child = start("echo", [there]);
  await roundTrips(here, WARMUP_TRIPS);
  const samples: number[] = [];
  for (let rep = 0; rep < RUNS; rep++) {
    const t0 = performance.now();
    await roundTrips(here, TRIPS);
    samples.push(((performance.now() - t0) / TRIPS) * 1_000);
  }
  await here.send(null);
  await ended(child);
  return samples;
}

/** A figure's samples from one of bench/python's scripts (none when python3 is missing or fails). */
const python = (script: string, name: string) => ({ "python 3.11 multiprocessing": pythonSamples(script, name) });

if (import.meta.main) {
  const raw = await postmessage();
  const rawFigure = (name: string) => samplesOf(raw, name);
  const toMain = await sample(workerToMain);
  printRow({
    area: "queues",
    name: "Queue one-way worker→main, small objects",
    unit: "items/s",
    better: "higher",
    ours: toMain,
    against: {
      "raw postMessage": rawFigure("postmessage_worker_to_main"),
      ...python("queues.py", "queue_child_to_main"),
    },
  });
  const toWorker = await sample(workerToWorker);
  printRow({
    area: "queues",
    name: "Queue one-way worker→worker, small objects",
    unit: "items/s",
    better: "higher",
    ours: toWorker,
    against: {
      "raw postMessage (MessageChannel)": rawFigure("postmessage_worker_to_worker"),
      ...python("queues.py", "queue_child_to_child"),
    },
  });
  const rawTrip = samplesOf(await pingpong(), "pingpong_messagechannel");
  const trip = await pipeLatency();
  printRow({
    area: "queues",
    name: "Pipe round trip main↔worker, small object",
    unit: "us",
    better: "lower",
    ours: trip,
    against: { "raw MessageChannel ping-pong": rawTrip, ...python("pipe.py", "pipe_round_trip") },
  });
}
