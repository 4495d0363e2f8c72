// A Node or Bun project without TypeScript that installed the JavaScript JSR
// serves: scripts/packaging.ts installs that layout next to this file and
// runs it. Targets are exported from this script, which the children import.
import { Lock, Pool, Process, Queue } from "@mp/multiprocessing";

export async function greet(queue, lock, name) {
  await lock.acquire();
  try {
    await queue.put(`hello ${name}`);
  } finally {
    lock.release();
  }
}

export function double(x) {
  return x * 2;
}

if (import.meta.main) {
  const queue = new Queue();
  const lock = new Lock();
  const children = ["ann", "bob"].map((name) => new Process({ target: greet, args: [queue, lock, name] }));
  for (const child of children) child.start();
  const greetings = [await queue.get({ timeout: 10_000 }), await queue.get({ timeout: 10_000 })];
  for (const greeting of greetings.sort()) console.log(greeting);
  for (const child of children) await child.join();
  console.log("pid", children[0].pid, "exit code", children[0].exitCode);

  const pool = new Pool(2);
  console.log("map", (await pool.map(double, [1, 2, 3])).join(" "));
  console.log("apply", await pool.apply(double, [21]));
  pool.close();
  await pool.join();
  console.log("done");
}
