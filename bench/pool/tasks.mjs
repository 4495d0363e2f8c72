// Worker file for piscina and tinypool in bench/pool.ts: the same tasks that
// bench/pool.ts exports for our Pool, in the shape those libraries load.
export default function inc(x) {
  return x + 1;
}

export function incChunk(items) {
  const out = new Array(items.length);
  for (let i = 0; i < items.length; i++) out[i] = items[i] + 1;
  return out;
}

export function spin(n) {
  let total = 0;
  for (let i = 0; i < n; i++) total ^= i + (i >>> 3);
  return total;
}
