/**
 * Diagnosis for issue 14, not an area of `npm run bench`: the raw floor of
 * bench/pool.ts's map, two bare workers given the same 8 chunks of 100,000
 * numbers as Float64Arrays (4 each, one message a worker, transferred), each
 * chunk answered as its own message and copied into one result array. Prints
 * the rates (M items/s) of `runs` maps after one unrecorded map.
 *
 * Run: node bench/pool/raw_map.ts [runs]
 */
import { spawnRaw } from "../raw/worker.ts";

const ITEMS = 100_000;
const args = (globalThis as { process?: { argv: string[] } }).process?.argv.slice(2) ?? [];
const runs = Number(args[0] ?? 7);
const workers = [0, 1].map(() => spawnRaw(new URL("./raw_map_worker.ts", import.meta.url)));
const input = Array.from({ length: ITEMS }, (_, i) => i);

function map(items: number[]): Promise<number[]> {
  const size = Math.ceil(items.length / 8);
  const out = new Array(items.length);
  let left = 8;
  const { promise, resolve } = Promise.withResolvers<number[]>();
  for (let w = 0; w < 2; w++) {
    const chunks: Float64Array[] = [];
    for (let c = w * 4; c < w * 4 + 4; c++) {
      const slice = items.slice(c * size, (c + 1) * size);
      for (let i = 0; i < slice.length; i++) if (typeof slice[i] !== "number") throw new TypeError("not a number");
      chunks.push(new Float64Array(slice));
    }
    let next = w * 4;
    workers[w].onMessage((values: Float64Array) => {
      const at = next++ * size;
      for (let i = 0; i < values.length; i++) out[at + i] = values[i];
      if (--left === 0) resolve(out);
    });
    workers[w].post(chunks, chunks.map((c) => c.buffer));
  }
  return promise;
}

await map(input);
const rates: number[] = [];
for (let r = 0; r < runs; r++) {
  const t0 = performance.now();
  const out = await map(input);
  if (out[ITEMS - 1] !== ITEMS) throw new Error("wrong result");
  rates.push(ITEMS / (performance.now() - t0) / 1000);
}
const sorted = [...rates].sort((a, b) => a - b);
console.log(
  `raw map M/s: median ${sorted[sorted.length >> 1].toFixed(1)} slowest ${sorted[0].toFixed(1)} | ` +
    rates.map((r) => r.toFixed(0)).join(" "),
);
await Promise.all(workers.map((w) => w.terminate()));
