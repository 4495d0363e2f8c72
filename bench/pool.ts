/**
 * Pool throughput and latency beside piscina and tinypool, in the same run,
 * each with two workers:
 *
 * - 100,000 tiny tasks (`x => x + 1`) all in flight (`applyAsync` / `run`);
 * - `map` of 100,000 tiny items with the default chunksize, beside piscina
 *   and tinypool given the same work as 8 chunks (arrays in, arrays out);
 * - one tiny task awaited at a time (latency);
 * - a CPU-bound workload (8 tasks of a long loop) on 1 and 2 workers;
 *
 * each seven times (bench/measure.ts), beside Python 3.11's Pool(2) from
 * bench/python/pool.py in the same run.
 *
 * Run: deno run -A bench/pool.ts | bun bench/pool.ts | node bench/pool.ts
 * Pool workers import this module, so everything heavy is in the main block.
 */
import { Pool } from "../mod.ts";
import { printRow, pythonSamples, RUNS, WARMUP } from "./measure.ts";

export function inc(x: number): number {
  return x + 1;
}

/**
 * The CPU-bound task. An exclusive or, never an addition that overflows int32: with `(total + x) | 0` Node's
 * mid-tier code for the loop deopted on the overflow (--trace-deopt: "deopt-eager, reason: overflow") and
 * where the loop's code then settled decided the run, the same 8 tasks taking 0.6, 1.3 or 6.2 s of CPU in
 * the same worker, for piscina and tinypool alike: the speed-up from 1 to 2 workers read 0.73× (0.35× at load 6).
 */
export function spin(n: number): number {
  let total = 0;
  for (let i = 0; i < n; i++) total ^= i + (i >>> 3);
  return total;
}

const FLOOD = 100_000;
const MAPPED = 100_000;
const SERIAL = 2_000;
const CPU_TASKS = 8;
const CPU_LOOP = 200_000_000;
const WORKERS = 2;

/** What each contender offers: submit one task, map a list, and shut down. */
interface Contender {
  name: string;
  run(x: number): Promise<number>;
  map(items: number[]): Promise<number[]>;
  spin(n: number): Promise<number>;
  close(): Promise<void>;
}

/**
 * How long one sample may take before its contender counts as hung here. At 20 s, piscina counted as hung on
 * Deno at load average 17 (100,000 tasks at a few thousand a second), as tinypool does on Deno for real.
 */
const HUNG_MS = 60_000;

class Hung extends Error {}

/** Races `work` against HUNG_MS, so one broken contender cannot stall the bench. */
async function bounded<T>(work: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hung = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Hung()), HUNG_MS)));
  return await Promise.race([work, hung]).finally(() => clearTimeout(timer));
}

/**
 * RUNS samples of `measure` after WARMUP unrecorded ones, as bench/measure.ts's `sample` takes every other
 * area's (the contender was also warmed up first, `warm`). Without it the first map after the floods paid for
 * their garbage: 60 MB of it, 15-35 ms scavenges on Node's main thread in the maps after them (--trace-gc),
 * against 0.5 ms otherwise; and the maps right after the one warm-up map ran 2-4 times slower than later ones
 * on all three runtimes, for ours and the raw workers of bench/pool/raw_map.ts alike.
 */
async function runs(measure: () => Promise<number>): Promise<number[]> {
  for (let r = 0; r < WARMUP; r++) await bounded(measure());
  const samples: number[] = [];
  for (let r = 0; r < RUNS; r++) samples.push(await bounded(measure()));
  return samples;
}

function check(got: number, want: number, what: string): void {
  if (got !== want) throw new Error(`${what}: expected ${want}, got ${got}`);
}

async function flood(c: Contender): Promise<number> {
  const t0 = performance.now();
  const pending: Promise<number>[] = new Array(FLOOD);
  for (let i = 0; i < FLOOD; i++) pending[i] = c.run(i);
  const results = await Promise.all(pending);
  const rate = FLOOD / ((performance.now() - t0) / 1000);
  check(results[FLOOD - 1], FLOOD, `${c.name} flood`);
  return rate;
}

const input = Array.from({ length: MAPPED }, (_, i) => i);

async function mapped(c: Contender): Promise<number> {
  const t0 = performance.now();
  const results = await c.map(input);
  const rate = MAPPED / ((performance.now() - t0) / 1000);
  check(results[MAPPED - 1], MAPPED, `${c.name} map`);
  return rate;
}

async function serial(c: Contender): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < SERIAL; i++) check(await c.run(i), i + 1, `${c.name} serial`);
  return (performance.now() - t0) / SERIAL * 1000;
}

async function cpu(c: Contender): Promise<number> {
  const t0 = performance.now();
  const results = await Promise.all(Array.from({ length: CPU_TASKS }, () => c.spin(CPU_LOOP)));
  const seconds = (performance.now() - t0) / 1000;
  if (new Set(results).size !== 1) throw new Error(`${c.name} cpu: results differ`);
  return seconds;
}

function ours(workers: number): Contender {
  const pool = new Pool(workers);
  return {
    name: "ours",
    run: (x) => pool.apply(inc, [x]),
    map: (items) => pool.map(inc, items),
    spin: (n) => pool.apply(spin, [n]),
    async close() {
      pool.terminate();
      await pool.join();
    },
  };
}

const filename = new URL("./pool/tasks.mjs", import.meta.url).href;

/** Eight chunks, as Python's default chunksize gives for two workers. */
function chunks(items: number[]): number[][] {
  const size = Math.ceil(items.length / (WORKERS * 4));
  const out: number[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

interface RunPool {
  run(task: unknown, options?: { name?: string }): Promise<unknown>;
  destroy(): Promise<void>;
}

function library(name: string, pool: RunPool): Contender {
  return {
    name,
    run: (x) => pool.run(x) as Promise<number>,
    map: async (items) =>
      (await Promise.all(chunks(items).map((c) => pool.run(c, { name: "incChunk" })))).flat() as number[],
    spin: (n) => pool.run(n, { name: "spin" }) as Promise<number>,
    close: () => pool.destroy(),
  };
}

async function piscina(workers: number): Promise<Contender> {
  const { Piscina } = await import("piscina");
  return library("piscina", new Piscina({ filename, minThreads: workers, maxThreads: workers }) as unknown as RunPool);
}

async function tinypool(workers: number): Promise<Contender> {
  const { Tinypool } = await import("tinypool");
  return library(
    "tinypool",
    new Tinypool({ filename, minThreads: workers, maxThreads: workers }) as unknown as RunPool,
  );
}

/** Workers are started and warm before anything is timed: a JIT compiles what a full map runs. */
async function warm(c: Contender): Promise<void> {
  await Promise.all(Array.from({ length: 200 }, (_, i) => c.run(i)));
  await c.map(input);
  await c.spin(1_000);
}

/** Each figure's samples; none where a contender could not be measured here (see `notes`). */
interface Figures {
  flood: number[];
  map: number[];
  serial: number[];
  cpu2: number[];
  cpu1: number[];
}

const notes: string[] = [];

async function measure(make: (workers: number) => Contender | Promise<Contender>): Promise<Figures> {
  const figures: Figures = { flood: [], map: [], serial: [], cpu2: [], cpu1: [] };
  const on = async (workers: number, body: (c: Contender) => Promise<void>) => {
    const c = await make(workers);
    await bounded(warm(c));
    await body(c);
    await bounded(c.close());
  };
  try {
    await on(WORKERS, async (c) => {
      figures.flood = await runs(() => flood(c));
      figures.map = await runs(() => mapped(c));
      figures.serial = await runs(() => serial(c));
      figures.cpu2 = await runs(() => cpu(c));
    });
    await on(1, async (c) => void (figures.cpu1 = await runs(() => cpu(c))));
  } catch (error) {
    if (!(error instanceof Hung)) throw error;
    const name = make.name;
    notes.push(`${name} hung (no answer within ${HUNG_MS / 1000} s) on ${runtime}; its remaining figures are missing`);
  }
  return figures;
}

const runtime = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";

if (import.meta.main) {
  const mine = await measure(ours);
  const others = {
    [`piscina (${runtime})`]: await measure(piscina),
    [`tinypool (${runtime})`]: await measure(tinypool),
  };
  const python = (name: string) => ({ "python 3.11 Pool(2)": pythonSamples("pool.py", name) });
  const row = (
    name: string,
    unit: string,
    better: "higher" | "lower",
    pick: (f: Figures) => number[],
    py: Record<string, number[]> = {},
  ) => {
    const measured = Object.entries(others).filter(([, f]) => pick(f).length > 0);
    const against = Object.fromEntries(measured.map(([who, f]) => [who, pick(f)]));
    const missing = pick(mine).length === 0 || measured.length < Object.keys(others).length;
    printRow({
      area: "pool",
      name,
      unit,
      better,
      ours: pick(mine),
      against: { ...against, ...py },
      ...(missing && notes.length ? { notes: notes.join("; ") } : {}),
    });
  };
  row("100k tiny tasks in flight (applyAsync)", "tasks/s", "higher", (f) => f.flood, python("pool_apply_async_flood"));
  row(
    "map of 100k tiny items, default chunksize (others: the same 8 chunks)",
    "items/s",
    "higher",
    (f) => f.map,
    python("pool_map"),
  );
  row("one tiny task at a time (latency)", "us", "lower", (f) => f.serial, python("pool_apply_serial"));
  row(`CPU-bound, ${CPU_TASKS} tasks on 2 workers`, "s", "lower", (f) => f.cpu2);
  // Run by run: the i-th run on one worker over the i-th on two.
  const speedUp = (f: Figures) => f.cpu1.map((one, i) => one / f.cpu2[i]).filter(Number.isFinite);
  row("CPU-bound speed-up from 1 to 2 workers", "x", "higher", speedUp, python("pool_cpu_speedup"));
  // A contender that hung still has threads that would hold the program open.
  process.exit(0);
}
