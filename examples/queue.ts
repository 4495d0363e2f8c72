/**
 * Seed program 3: a child puts a list on a queue that it got from its
 * parent, and the parent prints it.
 *
 * Python:
 *   def f(q):
 *       q.put([42, None, 'hello'])
 *   if __name__ == '__main__':
 *       q = Queue()
 *       p = Process(target=f, args=(q,))
 *       p.start()
 *       print(q.get())    # prints "[42, None, 'hello']"
 *       p.join()
 *
 * Run: deno run -A examples/queue.ts | bun examples/queue.ts | node examples/queue.ts
 */
import { Process, Queue } from "../mod.ts";

export function f(q: Queue<unknown[]>): void {
  q.put([42, null, "hello"]);
}

if (import.meta.main) {
  const q = new Queue<unknown[]>();
  const p = new Process({ target: f, args: [q] });
  p.start();
  // JSON, so that every runtime prints the list the same way.
  console.log(JSON.stringify(await q.get()));
  await p.join();
}
