/**
 * Diagnosis for issue 14, not an area of `npm run bench`: bench/pool.ts's CPU-bound figure alone, 8 tasks of
 * `spin(200M)` on a pool of 2 and then of 1, each run's seconds printed, and how far the workers' own CPU time
 * (process.cpuUsage) tells apart a slow loop from a loop without a core.
 *
 * Run: node bench/pool/cpu.ts [runs]
 */
import process from "node:process";
import { Pool } from "../../mod.ts";
import { inc, spin } from "../pool.ts";

if (import.meta.main) {
  const runs = Number(process.argv[2] ?? 4);
  for (const size of [2, 1]) {
    const pool = new Pool(size);
    await pool.apply(spin, [1_000]);
    if (process.argv.includes("--busy-first") && size === 2) {
      // What bench/pool.ts runs on the pool of two before its CPU-bound runs.
      const input = Array.from({ length: 100_000 }, (_, i) => i);
      for (let r = 0; r < 8; r++) await Promise.all(Array.from({ length: 100_000 }, (_, i) => pool.apply(inc, [i])));
      for (let r = 0; r < 8; r++) await pool.map(inc, input);
      for (let r = 0; r < 8 * 2_000; r++) await pool.apply(inc, [r]);
    }
    const out: string[] = [];
    for (let r = 0; r < runs; r++) {
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      await Promise.all(Array.from({ length: 8 }, () => pool.apply(spin, [200_000_000])));
      const wall = (performance.now() - t0) / 1000;
      const cpu = process.cpuUsage(cpu0);
      out.push(`${wall.toFixed(2)} s (CPU ${((cpu.user + cpu.system) / 1e6).toFixed(2)} s)`);
    }
    console.log(`${size} worker(s): ${out.join(", ")}`);
    pool.terminate();
    await pool.join();
  }
}
