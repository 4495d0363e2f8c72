/**
 * Shared objects inside queue items (src/resource_sharer.ts), worker → main:
 * an item holding a Lock, beside plain `{ i, s: "x" }` items through the
 * same kind of queue in the same run (what parking costs per item); and an
 * item holding a pipe end, beside Python 3.11 sending a Connection per item
 * through its resource sharer (bench/python/transfer.py; Python refuses a
 * Lock in a queue item, so it has no figure for the first). Medians of 5
 * runs after one unrecorded run.
 *
 * Run: deno run -A bench/transfer.ts | bun bench/transfer.ts | node bench/transfer.ts
 */
import { Lock, Pipe, Process, Queue } from "../mod.ts";
import { printRow, pythonSamples, sample } from "./measure.ts";

const LOCKS = 20_000;
const ENDS = 200;
const TIMEOUT = 60_000;

function waitForGo(go: Int32Array): void {
  while (Atomics.load(go, 0) === 0) Atomics.wait(go, 0, 0, 1_000);
}

/** In a child: waits for the go flag, then puts `n` items of `kind`. */
export function produce(q: Queue, n: number, kind: string, go: Int32Array): void {
  waitForGo(go);
  const lock = new Lock();
  for (let i = 0; i < n; i++) {
    if (kind === "plain") q.putSync({ i, s: "x" });
    else if (kind === "lock") q.putSync({ i, lock });
    else {
      const [mine, theirs] = Pipe();
      q.putSync({ i, end: theirs });
      (mine.close(), theirs.close());
    }
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function oneWay(kind: string, n: number): Promise<number> {
  const q = new Queue();
  const go = new Int32Array(new SharedArrayBuffer(4));
  const producer = new Process({ target: "produce", args: [q, n, kind, go] });
  producer.start();
  await sleep(200); // the child is up: start-up is not measured
  const t0 = performance.now();
  Atomics.store(go, 0, 1);
  Atomics.notify(go, 0);
  for (let k = 0; k < n; k++) {
    const item = await q.get({ timeout: TIMEOUT }) as { i: number; end?: { close(): void } };
    if (item.i !== k) throw new Error(`item ${item.i} came in place ${k}`);
    item.end?.close();
  }
  const elapsed = performance.now() - t0;
  await producer.join(TIMEOUT);
  if (producer.exitCode !== 0) throw new Error(`the producer ended with exit code ${producer.exitCode}`);
  return n / (elapsed / 1_000);
}

if (import.meta.main) {
  const items = await sample(async () => ({ plain: await oneWay("plain", LOCKS), lock: await oneWay("lock", LOCKS) }));
  printRow({
    area: "transfer",
    name: "Queue one-way worker→main, a Lock in each item",
    unit: "items/s",
    better: "higher",
    ours: items.lock,
    against: { "plain { i, s } items, same run": items.plain },
  });
  printRow({
    area: "transfer",
    name: "Queue one-way worker→main, a pipe end in each item",
    unit: "items/s",
    better: "higher",
    ours: await sample(() => oneWay("end", ENDS)),
    against: { "python 3.11 multiprocessing": pythonSamples("transfer.py", "connection_in_queue_item") },
    notes: "Python sends a Connection through its resource sharer; it refuses a Lock in a queue item",
  });
}
