/**
 * Diagnosis for issue 14's slow maps, not an area of `npm run bench`: many
 * `Pool.map`s of 100,000 tiny items, as bench/pool.ts times them, each with a
 * timeline of when each worker started and finished each of its chunks.
 * Prints every map's rate and, for the slowest maps, the timeline.
 *
 * Also: each map's CPU time (all threads) and, with --threads, each thread's
 * CPU ticks (Linux /proc); --flood runs bench/pool.ts's 7 floods first,
 * --plain maps without the timeline, --live prints each map as it ends.
 *
 * Run: node bench/pool/timeline.ts [maps] [--flood] | deno run -A … | bun …
 */
import process from "node:process";
import { readdirSync, readFileSync } from "node:fs";
import { Pool } from "../../mod.ts";

const ITEMS = 100_000;
const CHUNKS = 8;
const SIZE = ITEMS / CHUNKS;
const MAPS_MAX = 1_000;

/** Per map and chunk: worker, start, end (epoch ms). Cell 0 of `control`: the map being timed; 1: workers seen. */
let control: Int32Array | undefined;
let times: Float64Array | undefined;
let me = -1;

export function setup(shared: SharedArrayBuffer, timeline: SharedArrayBuffer): void {
  control = new Int32Array(shared);
  times = new Float64Array(timeline);
  me = Atomics.add(control, 1, 1);
}

/** CPU ticks (user + system) of each thread of this process, by "tid name". */
function threadTicks(): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync("/proc/self/task")) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
      const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      out.set(`${tid} ${name}`, Number(fields[11]) + Number(fields[12]));
    } catch { /* the thread ended */ }
  }
  return out;
}

const now = () => performance.timeOrigin + performance.now();

export function traced(x: number): number {
  const r = x % SIZE;
  if (r === 0 || r === SIZE - 1) {
    const at = (Atomics.load(control!, 0) * CHUNKS + Math.floor(x / SIZE)) * 3;
    if (r === 0) (times![at] = me, times![at + 1] = now());
    else times![at + 2] = now();
  }
  return x + 1;
}

export function inc(x: number): number {
  return x + 1;
}

if (import.meta.main) {
  const args = (globalThis as { process?: { argv: string[] } }).process?.argv.slice(2) ?? [];
  const maps = Number(args.find((a) => /^\d+$/.test(a)) ?? 60);
  const floodFirst = args.includes("--flood");
  const plain = args.includes("--plain");
  const live = args.includes("--live");
  const shared = new SharedArrayBuffer(8);
  const timeline = new SharedArrayBuffer(MAPS_MAX * CHUNKS * 3 * 8);
  const ctl = new Int32Array(shared);
  const tl = new Float64Array(timeline);
  const pool = new Pool({ processes: 2, initializer: setup, initargs: [shared, timeline] });
  const input = Array.from({ length: ITEMS }, (_, i) => i);
  await Promise.all(Array.from({ length: 200 }, (_, i) => pool.apply(inc, [i])));
  await pool.map(traced, input);
  if (floodFirst) {
    for (let r = 0; r < 7; r++) {
      await Promise.all(Array.from({ length: 100_000 }, (_, i) => pool.apply(inc, [i])));
    }
  }
  const rows: { m: number; ms: number; t0: number; t1: number; sync: number }[] = [];
  const ticks0 = threadTicks();
  const cpu0 = process.cpuUsage();
  const wall0 = now();
  for (let m = 1; m <= maps; m++) {
    Atomics.store(ctl, 0, m);
    const t0 = now();
    const pending = pool.map(plain ? inc : traced, input);
    const ts = now();
    const out = await pending;
    const t1 = now();
    if (out[ITEMS - 1] !== ITEMS) throw new Error("wrong result");
    if (live) console.log(`map ${m} ${(t1 - t0).toFixed(2)} ms (packed ${(ts - t0).toFixed(2)})`);
    rows.push({ m, ms: t1 - t0, t0, t1, sync: ts - t0 });
  }
  const cpu = process.cpuUsage(cpu0);
  if (args.includes("--threads")) {
    const ticks1 = threadTicks();
    const used = [...ticks1].map(([k, v]) => [k, v - (ticks0.get(k) ?? 0)] as const).filter(([, v]) => v > 0);
    console.log(`threads (10 ms ticks over ${maps} maps): ${used.map(([k, v]) => `${k}: ${v}`).join(", ")}`);
  }
  const cpuPerMap = (cpu.user + cpu.system) / 1000 / maps;
  const wallPerMap = (now() - wall0) / maps;
  const rates = rows.map((r) => ITEMS / r.ms / 1000);
  const sorted = [...rates].sort((a, b) => a - b);
  console.log(
    `maps ${maps}: p90 ${sorted[Math.floor(maps * 0.9)].toFixed(1)} median ${
      sorted[sorted.length >> 1].toFixed(1)
    }M/s, ` +
      `p10 ${sorted[Math.floor(maps * 0.1)].toFixed(1)} slowest ${sorted[0].toFixed(1)}M/s; ` +
      `CPU ${cpuPerMap.toFixed(2)} ms/map (wall ${wallPerMap.toFixed(2)}); ` +
      `rates: ${rates.map((r) => r.toFixed(0)).join(" ")}`,
  );
  if (!plain) {
    const slow = rows.filter((r) => r.m > 10).sort((a, b) => b.ms - a.ms).slice(0, 6);
    slow.push([...rows].sort((a, b) => a.ms - b.ms)[rows.length >> 1]);
    for (const r of slow) {
      const parts: string[] = [];
      for (let c = 0; c < CHUNKS; c++) {
        const at = (r.m * CHUNKS + c) * 3;
        parts.push(`c${c}@w${tl[at]} ${(tl[at + 1] - r.t0).toFixed(2)}–${(tl[at + 2] - r.t0).toFixed(2)}`);
      }
      console.log(`map ${r.m}: ${r.ms.toFixed(2)} ms, packed by ${r.sync.toFixed(2)} | ${parts.join(" | ")}`);
    }
  }
  pool.terminate();
  await pool.join();
}
