/**
 * Seed program 5: ten processes write to a managed dict and append their pid
 * to a managed list; the parent prints both once all have ended.
 *
 * Python:
 *   def f(d, l):
 *       d[1] = '1'
 *       d['2'] = 2
 *       d[0.25] = None
 *       l.append(os.getpid())
 *       print(l)
 *   if __name__ == '__main__':
 *       with Manager() as manager:
 *           d = manager.dict()
 *           l = manager.list(range(5))
 *           p_list = []
 *           for i in range(10):
 *               p = Process(target=f, args=(d, l))
 *               p.start()
 *               p_list.append(p)
 *           for res in p_list:
 *               res.join()
 *           print(d)
 *           print(l)
 *
 * One change: a lock (from the same manager) holds each child's append and
 * print together, so that every printed list ends with that child's pid and
 * the output can be checked line by line.
 *
 * Run: deno run -A examples/manager.ts | bun examples/manager.ts | node examples/manager.ts
 */
import { currentProcess, type DictProxy, type ListProxy, type Lock, Manager, Process } from "../mod.ts";

/** Python's repr of the values this program prints. */
function repr(value: unknown): string {
  if (value === null || value === undefined) return "None";
  if (typeof value === "string") return `'${value}'`;
  if (Array.isArray(value)) return `[${value.map(repr).join(", ")}]`;
  if (value instanceof Map) return `{${[...value].map(([k, v]) => `${repr(k)}: ${repr(v)}`).join(", ")}}`;
  return String(value);
}

export async function f(
  d: DictProxy<number | string, string | number | null>,
  l: ListProxy<number>,
  lock: Lock,
): Promise<void> {
  await d.set(1, "1");
  await d.set("2", 2);
  await d.set(0.25, null);
  await lock.acquire();
  try {
    await l.append(currentProcess().pid!);
    console.log(repr(await l.toArray()));
  } finally {
    lock.release();
  }
}

if (import.meta.main) {
  await using manager = await Manager();
  const d = manager.dict<number | string, string | number | null>();
  const l = manager.list([0, 1, 2, 3, 4]);
  const lock = manager.Lock();
  const pList: Process[] = [];
  for (let i = 0; i < 10; i++) {
    const p = new Process({ target: f, args: [d, l, lock] });
    p.start();
    pList.push(p);
  }
  for (const res of pList) await res.join();
  console.log(repr(await d.toMap()));
  console.log(repr(await l.toArray()));
}
