/**
 * CPython's Doc/includes/mp_benchmarks.py, ported: objects through a Queue
 * and a Pipe, item reads of lists and Arrays, Lock and RLock round trips, and
 * Condition ping-pongs between two processes (which lost a wake-up and hung
 * before Condition's notify kept its tickets for the waiters already waiting).
 *
 * Each test doubles its iterations until one run takes DELTA seconds, and
 * prints what Python prints. The `threading` and `queue.Queue` sections are
 * left out: JavaScript has no threads that share a heap. The manager's Queue,
 * Lock, RLock and Condition are the library's shared-memory ones (its Manager
 * hands out those, not server proxies); the manager's list is a proxy.
 *
 * Run: deno run -A examples/benchmarks.ts | bun examples/benchmarks.ts | node examples/benchmarks.ts
 */
import { Condition, type Connection, Lock, Manager, Pipe, Process, Queue, RLock, SharedArray } from "../mod.ts";

/** Python's delta is 1 s; a fifth keeps the example short and the structure the same. */
const DELTA = 0.2;
/**
 * Python starts at 1 and doubles; the tests that start a process per run then
 * spend most of their time starting processes (~14 starts each), so these
 * start at 2 ** 9 (the first run is then doubled to 1024, as Python's would be).
 */
const FIRST = 512;

const now = () => performance.now() / 1000;

/** A float as Python's print() shows it: always with a decimal point. */
function float(x: number): string {
  return Number.isInteger(x) ? `${x}.0` : String(x);
}

function report(iterations: number, what: string, elapsed: number): void {
  console.log(iterations, what, float(elapsed), "seconds");
  console.log("average number/sec:", float(iterations / elapsed));
}

// ---- queue speed

export function queuespeedFunc(q: Queue<string>, c: Condition, iterations: number): void {
  const a = "0".repeat(256);
  c.acquireSync();
  c.notify();
  c.release();
  for (let i = 0; i < iterations; i++) q.putSync(a);
  q.putSync("STOP");
}

async function testQueuespeed(q: Queue<string>, c: Condition): Promise<void> {
  let elapsed = 0;
  let iterations = FIRST;
  while (elapsed < DELTA) {
    iterations *= 2;
    const p = new Process({ target: queuespeedFunc, args: [q, c, iterations] });
    await c.acquire();
    p.start();
    await c.wait();
    c.release();
    let result: string | undefined;
    const t = now();
    while (result !== "STOP") result = await q.get();
    elapsed = now() - t;
    await p.join();
  }
  report(iterations, "objects passed through the queue in", elapsed);
}

// ---- pipe speed

export async function pipeFunc(c: Connection<string>, cond: Condition, iterations: number): Promise<void> {
  const a = "0".repeat(256);
  cond.acquireSync();
  cond.notify();
  cond.release();
  for (let i = 0; i < iterations; i++) await c.send(a);
  await c.send("STOP");
}

async function testPipespeed(): Promise<void> {
  const [c, d] = Pipe<string>();
  const cond = new Condition();
  let elapsed = 0;
  let iterations = FIRST;
  while (elapsed < DELTA) {
    iterations *= 2;
    const p = new Process({ target: pipeFunc, args: [d, cond, iterations] });
    await cond.acquire();
    p.start();
    await cond.wait();
    cond.release();
    let result: string | undefined;
    const t = now();
    while (result !== "STOP") result = await c.recv();
    elapsed = now() - t;
    await p.join();
  }
  report(iterations, "objects passed through connection in", elapsed);
}

// ---- sequence speed

async function testSeqspeed(read: () => unknown): Promise<void> {
  let elapsed = 0;
  let iterations = FIRST;
  while (elapsed < DELTA) {
    iterations *= 2;
    const t = now();
    for (let i = 0; i < iterations; i++) {
      const a = read();
      if (a instanceof Promise) await a;
    }
    elapsed = now() - t;
  }
  report(iterations, "iterations in", elapsed);
}

// ---- lock speed

async function testLockspeed(l: Lock | RLock): Promise<void> {
  let elapsed = 0;
  let iterations = FIRST;
  while (elapsed < DELTA) {
    iterations *= 2;
    const t = now();
    for (let i = 0; i < iterations; i++) {
      await l.acquire();
      l.release();
    }
    elapsed = now() - t;
  }
  report(iterations, "iterations in", elapsed);
}

// ---- condition speed

export function conditionspeedFunc(c: Condition, n: number): void {
  c.acquireSync();
  c.notify();
  for (let i = 0; i < n; i++) {
    c.waitSync();
    c.notify();
  }
  c.release();
}

async function testConditionspeed(c: Condition): Promise<void> {
  let elapsed = 0;
  let iterations = FIRST;
  while (elapsed < DELTA) {
    iterations *= 2;
    await c.acquire();
    const p = new Process({ target: conditionspeedFunc, args: [c, iterations] });
    p.start();
    await c.wait();
    const t = now();
    for (let i = 0; i < iterations; i++) {
      c.notify();
      await c.wait();
    }
    elapsed = now() - t;
    c.release();
    await p.join();
  }
  report(iterations * 2, "waits in", elapsed);
}

function heading(what: string): void {
  console.log(`\n\t######## testing ${what}\n`);
}

if (import.meta.main) {
  await using manager = await Manager();

  heading("multiprocessing.Queue");
  await testQueuespeed(new Queue(), new Condition());
  heading("Queue managed by server process");
  await testQueuespeed(manager.Queue(), manager.Condition());
  heading("multiprocessing.Pipe");
  await testPipespeed();

  console.log();

  const list = Array.from({ length: 10 }, (_, i) => i);
  heading("list");
  await testSeqspeed(() => list[5]);
  heading("list managed by server process");
  const managed = manager.list(list);
  await testSeqspeed(() => managed.get(5));
  heading('Array("i", ..., lock=False)');
  const raw = new SharedArray("i", list, { lock: false });
  await testSeqspeed(() => raw.get(5));
  heading('Array("i", ..., lock=True)');
  const locked = new SharedArray("i", list, { lock: true });
  await testSeqspeed(() => locked.get(5));

  console.log();

  heading("multiprocessing.Lock");
  await testLockspeed(new Lock());
  heading("multiprocessing.RLock");
  await testLockspeed(new RLock());
  heading("lock managed by server process");
  await testLockspeed(manager.Lock());
  heading("rlock managed by server process");
  await testLockspeed(manager.RLock());

  console.log();

  heading("multiprocessing.Condition");
  await testConditionspeed(new Condition());
  heading("condition managed by a server process");
  await testConditionspeed(manager.Condition());
}
