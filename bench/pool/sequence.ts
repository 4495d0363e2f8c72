/**
 * Diagnosis for issue 14, not an area of `npm run bench`: ours alone, in
 * bench/pool.ts's order (warm-up, 7 floods of 100k tasks, 7 maps of 100k
 * items), printing each timed map's rate in M items/s.
 *
 * Run: node bench/pool/sequence.ts [--no-flood] [--warm N]
 */
import process from "node:process";
import { Pool } from "../../mod.ts";
import { inc, spin } from "../pool.ts";

if (import.meta.main) {
  const args = (globalThis as { process?: { argv: string[] } }).process?.argv.slice(2) ?? [];
  const noFlood = args.includes("--no-flood");
  const warmMaps = Number(args[args.indexOf("--warm") + 1] ?? 0) || 0;
  const pool = new Pool(2);
  const input = Array.from({ length: 100_000 }, (_, i) => i);
  const map = async () => {
    const t0 = performance.now();
    const out = await pool.map(inc, input);
    if (out[99_999] !== 100_000) throw new Error("wrong");
    return 100_000 / (performance.now() - t0) / 1000;
  };
  await Promise.all(Array.from({ length: 200 }, (_, i) => pool.apply(inc, [i])));
  await pool.map(inc, input);
  await pool.apply(spin, [1_000]);
  const floods: number[] = [];
  if (!noFlood) {
    for (let r = 0; r < 7; r++) {
      const t0 = performance.now();
      await Promise.all(Array.from({ length: 100_000 }, (_, i) => pool.apply(inc, [i])));
      floods.push(100_000 / (performance.now() - t0) / 1000);
    }
  }
  if (args.includes("--heap")) console.log("heap before gc", (process.memoryUsage().heapUsed / 1e6).toFixed(1));
  if (args.includes("--gc")) (globalThis as unknown as { gc(): void }).gc();
  if (args.includes("--heap")) console.log("heap after gc", (process.memoryUsage().heapUsed / 1e6).toFixed(1));
  if (args.includes("--mark")) console.log("---- maps");
  for (let r = 0; r < warmMaps; r++) await map();
  const rates: number[] = [];
  for (let r = 0; r < 7; r++) rates.push(await map());
  const serial: number[] = [];
  if (args.includes("--serial")) {
    for (let r = 0; r < 8; r++) {
      const t0 = performance.now();
      for (let i = 0; i < 2_000; i++) await pool.apply(inc, [i]);
      serial.push((performance.now() - t0) / 2_000 * 1000);
    }
    serial.shift();
  }
  const sorted = [...rates].sort((a, b) => a - b);
  console.log(
    `map M/s: median ${sorted[3].toFixed(1)} slowest ${sorted[0].toFixed(1)} | ${
      rates.map((r) => r.toFixed(1)).join(" ")
    }` +
      (floods.length ? ` | flood k/s ${floods.map((r) => (r * 1000).toFixed(0)).join(" ")}` : "") +
      (serial.length ? ` | serial us ${serial.map((r) => r.toFixed(0)).join(" ")}` : ""),
  );
  pool.terminate();
  await pool.join();
}
