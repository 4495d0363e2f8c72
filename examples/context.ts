/**
 * The get_context example of Python's multiprocessing docs: a context's
 * Queue and Process.
 *
 * Python:
 *   def foo(q):
 *       q.put('hello')
 *   if __name__ == '__main__':
 *       ctx = mp.get_context('spawn')
 *       q = ctx.Queue()
 *       p = ctx.Process(target=foo, args=(q,))
 *       p.start()
 *       print(q.get())    # prints "hello"
 *       p.join()
 *
 * Run: deno run -A examples/context.ts | bun examples/context.ts | node examples/context.ts
 */
import { getContext, type Queue } from "../mod.ts";

export async function foo(q: Queue<string>): Promise<void> {
  await q.put("hello");
}

if (import.meta.main) {
  const ctx = getContext("spawn");
  const q = ctx.Queue<string>();
  const p = new ctx.Process({ target: foo, args: [q] });
  p.start();
  console.log(await q.get());
  await p.join();
}
