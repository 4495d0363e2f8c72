/**
 * The classic shared counter: two processes each add 1 to a shared Value
 * 10,000 times, under the Value's own lock, so no increment is lost.
 *
 * Python:
 *   def bump(v, n):
 *       for _ in range(n):
 *           with v.get_lock():
 *               v.value += 1
 *   if __name__ == '__main__':
 *       v = Value('i', 0)
 *       ps = [Process(target=bump, args=(v, 10_000)) for _ in range(2)]
 *       for p in ps: p.start()
 *       for p in ps: p.join()
 *       print('counter', v.value)
 *
 * Run: deno run -A examples/counter.ts | bun examples/counter.ts | node examples/counter.ts
 */
import { Process, Value } from "../mod.ts";

export function bump(v: Value<"i">, n: number): void {
  for (let i = 0; i < n; i++) {
    using _held = v.getLock().guardSync();
    v.value += 1;
  }
}

if (import.meta.main) {
  const v = new Value("i", 0);
  const ps = [0, 1].map(() => new Process({ target: bump, args: [v, 10_000] }));
  for (const p of ps) p.start();
  for (const p of ps) await p.join();
  console.log("counter", v.value);
}
