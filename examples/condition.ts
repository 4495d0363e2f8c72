/**
 * A producer and a consumer in two processes sharing a Condition and a
 * counter: the consumer waits for each item with `waitFor`, the producer
 * notifies after each. Python 3.11 prints the same ten lines, and the exit
 * code (the two sides may interleave in any order).
 *
 * Python:
 *   def consumer(cond, count, n):
 *       for i in range(n):
 *           with cond:
 *               cond.wait_for(lambda: count.value > i)
 *               print('consumed item', i, flush=True)
 *   if __name__ == '__main__':
 *       cond = mp.Condition()
 *       count = mp.Value('i', 0)
 *       p = mp.Process(target=consumer, args=(cond, count, 5))
 *       p.start()
 *       for i in range(5):
 *           with cond:
 *               count.value += 1
 *               print('produced item', i, flush=True)
 *               cond.notify()
 *       p.join()
 *       print('exit code', p.exitcode)
 *
 * Run: deno run -A examples/condition.ts | bun examples/condition.ts | node examples/condition.ts
 */
import { Condition, Process, Value } from "../mod.ts";

export function consumer(cond: Condition, count: Value<"i">, n: number): void {
  for (let i = 0; i < n; i++) {
    using _held = cond.guardSync();
    cond.waitForSync(() => count.value > i);
    console.log("consumed item", i);
  }
}

if (import.meta.main) {
  const cond = new Condition();
  const count = new Value("i", 0);
  const p = new Process({ target: consumer, args: [cond, count, 5] });
  p.start();
  for (let i = 0; i < 5; i++) {
    using _held = await cond.guard();
    count.value += 1;
    console.log("produced item", i);
    cond.notify();
  }
  await p.join();
  console.log("exit code", p.exitCode);
}
