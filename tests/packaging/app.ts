/**
 * The app that scripts/packaging.ts bundles with esbuild into one file and
 * runs on Deno, Bun and Node: a Process, a Queue and a Pool whose targets are
 * exported from this entry module and call a helper that is not exported, so
 * they only work when the child imports them from the bundle (as source text
 * they would throw a ReferenceError).
 */
import { currentProcess, Lock, Pool, Process, Queue } from "../../mod.ts";

function label(kind: string, value: number): string {
  return `${kind} ${value}`;
}

export async function produce(queue: Queue<string>, lock: Lock, n: number): Promise<void> {
  await lock.acquire();
  try {
    await queue.put(label("item", n));
  } finally {
    lock.release();
  }
}

export function square(x: number): string {
  return `${label("square", x * x)} in ${currentProcess().name.replace(/-\d+$/, "")}`;
}

if (import.meta.main) {
  const queue = new Queue<string>();
  const lock = new Lock();
  const producers = [1, 2, 3].map((n) => new Process({ target: produce, args: [queue, lock, n] }));
  for (const p of producers) p.start();
  const items = await Promise.all(producers.map(() => queue.get({ timeout: 10_000 })));
  for (const item of items.sort()) console.log(item);
  for (const p of producers) await p.join();
  console.log("exit codes", producers.map((p) => p.exitCode).join(" "));

  const pool = new Pool(2);
  for (const line of await pool.map(square, [1, 2, 3, 4])) console.log(line);
  pool.close();
  await pool.join();
  console.log("done");
}
