/**
 * Locks and the shared counter beside the raw platform and Python 3.11, all
 * measured in the same run:
 * - uncontended `acquireSync` + `release` in a worker, beside a raw
 *   `Atomics.compareExchange` lock in a worker (bench/raw/atomics_lock.ts);
 * - async `acquire` + `release` on the main thread, beside Python's
 *   uncontended `Lock.acquire()` + `release()`;
 * - hand-offs per second of one Lock between two workers, beside the raw lock;
 * - two processes × 10,000 `Value` increments under its lock, beside Python's
 *   `multiprocessing.Value` doing the same (bench/python/value.py);
 * - what a synchronized Value costs: `Value("d")` get + set with its lock
 *   (taken for each access, as Python's synchronized wrapper) beside
 *   `{ lock: false }`, in a worker and on the main thread.
 * Each child times itself from a shared start signal, so start-up is left out.
 * Seven runs of each after one unrecorded (bench/measure.ts).
 */
import { Event, Lock, Process, RawArray, Value } from "../mod.ts";
import { atomicsLock } from "./raw/atomics_lock.ts";
import { printRow, pythonSamples, sample, samplesOf } from "./measure.ts";

const SOLO_N = 2_000_000;
const CONTENDED_N = 100_000;
const COUNTER_N = 10_000;

/** Uncontended acquireSync + release pairs per second, written to `out[slot]`. */
export function solo(lock: Lock, n: number, out: RawArray<"d">, slot: number): void {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    lock.acquireSync();
    lock.release();
  }
  out.set(slot, n / ((performance.now() - t0) / 1000));
}

/** After `go`: n acquire/increment/release rounds; writes seconds taken and hand-offs seen. */
export function contend(lock: Lock, go: Event, n: number, owner: RawArray<"i">, id: number, out: RawArray<"d">): void {
  go.waitSync(30_000);
  const t0 = performance.now();
  let handoffs = 0;
  for (let i = 0; i < n; i++) {
    lock.acquireSync();
    if (owner.view[0] !== id) {
      owner.view[0] = id;
      handoffs++;
    }
    owner.view[1]++;
    lock.release();
  }
  out.set(2 * id, (performance.now() - t0) / 1000);
  out.set(2 * id + 1, handoffs);
}

/** After `go`: the classic counter, n increments of `v` under its lock; writes the seconds taken. */
export function count(v: Value<"i">, go: Event, n: number, out: RawArray<"d">, slot: number): void {
  go.waitSync(30_000);
  const lock = v.getLock();
  const t0 = performance.now();
  // try/finally rather than `using`: V8's `using` alone costs ~140 ns a block on Node 24.
  for (let i = 0; i < n; i++) {
    lock.acquireSync();
    try {
      v.value += 1;
    } finally {
      lock.release();
    }
  }
  out.set(slot, (performance.now() - t0) / 1000);
}

const ACCESS_N = 1_000_000;

/** n writes and n reads of `v`: item accesses per second, written to `out[slot]`. */
export function access(v: Value<"d">, n: number, out: RawArray<"d">, slot: number): void {
  const t0 = performance.now();
  let sum = 0;
  for (let i = 0; i < n; i++) {
    v.value = i;
    sum += v.value;
  }
  out.set(slot, (2 * n) / ((performance.now() - t0) / 1000));
  if (sum !== (n * (n - 1)) / 2) throw new Error(`a read did not see its write: ${sum}`);
}

/** Item accesses per second of a Value("d") with its lock and without, run by run, in a worker or here. */
export async function accessRates(where: "worker" | "main"): Promise<{ locked: number[]; raw: number[] }> {
  const rate = async (lock: boolean) => {
    const v = new Value("d", 0, { lock });
    const out = new RawArray("d", 1);
    if (where === "worker") await joined([run("access", v, ACCESS_N, out, 0)]);
    else access(v, ACCESS_N, out, 0);
    return out.get(0);
  };
  return await sample(async () => ({ locked: await rate(true), raw: await rate(false) }));
}

function run(target: string, ...args: unknown[]): Process {
  const p = new Process({ target, args });
  p.start();
  return p;
}

async function joined(processes: Process[]): Promise<void> {
  await Promise.all(processes.map((p) => p.join(60_000)));
  const bad = processes.filter((p) => p.exitCode !== 0);
  if (bad.length) throw new Error(`bench child failed: ${bad.map(String).join(", ")}`);
}

function soloRate(): Promise<number[]> {
  return sample(async () => {
    const out = new RawArray("d", 1);
    await joined([run("solo", new Lock(), SOLO_N, out, 0)]);
    return out.get(0);
  });
}

function mainThreadRate(): Promise<number[]> {
  const lock = new Lock();
  return sample(async () => {
    const n = 200_000;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      await lock.acquire();
      lock.release();
    }
    return n / ((performance.now() - t0) / 1000);
  });
}

/** Two workers, one lock: increments per second and hand-offs per second, run by run. */
function contended(): Promise<{ ops: number[]; handoffs: number[] }> {
  return sample(async () => {
    const lock = new Lock();
    const go = new Event();
    const owner = new RawArray("i", 2);
    const out = new RawArray("d", 4);
    const children = [0, 1].map((id) => run("contend", lock, go, CONTENDED_N, owner, id, out));
    await new Promise((resolve) => setTimeout(resolve, 100));
    go.set();
    await joined(children);
    if (owner.get(1) !== 2 * CONTENDED_N) throw new Error(`lost updates: ${owner.get(1)}`);
    const seconds = Math.max(out.get(0), out.get(2));
    return { ops: (2 * CONTENDED_N) / seconds, handoffs: (out.get(1) + out.get(3)) / seconds };
  });
}

function counter(): Promise<number[]> {
  return sample(async () => {
    const v = new Value("i", 0);
    const go = new Event();
    const out = new RawArray("d", 2);
    const children = [0, 1].map((slot) => run("count", v, go, COUNTER_N, out, slot));
    await new Promise((resolve) => setTimeout(resolve, 100));
    go.set();
    await joined(children);
    if (v.value !== 2 * COUNTER_N) throw new Error(`the counter lost increments: ${v.value}`);
    return (2 * COUNTER_N) / Math.max(out.get(0), out.get(1));
  });
}

if (import.meta.main) {
  const raw = await atomicsLock();
  const rawOf = (name: string) => samplesOf(raw, name);
  const pyAgainst = (name: string) => ({ "Python 3.11": pythonSamples("value.py", name) });
  const row = (name: string, ours: number[], against: Record<string, number[]>, notes?: string) =>
    printRow({ area: "synchronize", name, unit: "ops/s", better: "higher", ours, against, notes });
  row("Lock.acquireSync + release, uncontended, in a worker", await soloRate(), {
    "raw Atomics lock": rawOf("atomics_lock_uncontended"),
    ...pyAgainst("lock_uncontended"),
  });
  row("await Lock.acquire() + release, uncontended, main thread", await mainThreadRate(), {
    ...pyAgainst("lock_uncontended"),
  });
  const { ops, handoffs } = await contended();
  // The raw lock sleeps at once and rarely changes hands (one worker runs alone for long stretches, which
  // keeps its increments fast); ours spins before it sleeps, so the lock changes hands far more often.
  row("Lock contended by 2 workers: increments", ops, { "raw Atomics lock": rawOf("atomics_lock_contended") });
  row(
    "Lock contended by 2 workers: hand-offs",
    handoffs,
    { "raw Atomics lock": rawOf("atomics_lock_handoffs") },
    "times the lock changed owner",
  );
  row("Value counter: 2 processes × 10,000 locked increments", await counter(), {
    ...pyAgainst("value_contended_increments"),
  }, "from a shared start signal to both done; total checked exact");
  for (const where of ["worker", "main"] as const) {
    const { locked, raw } = await accessRates(where);
    row(`Value("d") get + set, lock true, ${where === "worker" ? "in a worker" : "on the main thread"}`, locked, {
      "lock false": raw,
    }, "each access takes the lock (a read cannot tear), as Python's synchronized Value");
  }
}
