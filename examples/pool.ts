/**
 * Seed program 7: a pool of five processes; ten tasks run one at a time with
 * apply(), then ten at once with applyAsync() and a callback.
 *
 * Python:
 *   def Foo(i):
 *       time.sleep(2); print("in process", os.getpid()); return i + 100
 *   def Bar(arg):
 *       print("-- exec done:", arg)
 *   if __name__ == "__main__":
 *       pool = Pool(5)
 *       for i in range(10):
 *           pool.apply(func=Foo, args=(i,))                    # serial
 *           # pool.apply_async(func=Foo, args=(i,), callback=Bar)  # parallel
 *       print("end")
 *       pool.close()
 *       pool.join()
 *
 * Run: deno run -A examples/pool.ts | bun examples/pool.ts | node examples/pool.ts
 */
import { currentProcess, Pool } from "../mod.ts";

export async function Foo(i: number): Promise<number> {
  await new Promise((resolve) => setTimeout(resolve, 200));
  console.log("in process", currentProcess().pid);
  return i + 100;
}

/** Runs in the main process, with each result, as Python's callback does. */
export function Bar(arg: number): void {
  console.log("-- exec done:", arg);
}

if (import.meta.main) {
  const pool = new Pool(5);
  for (let i = 0; i < 10; i++) await pool.apply(Foo, [i]); // serial
  for (let i = 0; i < 10; i++) pool.applyAsync(Foo, [i], { callback: Bar }); // parallel
  console.log("end");
  pool.close();
  await pool.join();
}
