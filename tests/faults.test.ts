/**
 * Faults: what a process that was terminated (or that ended itself with the
 * runtime's own exit call) may still do, and what the others see. After a
 * process is reported ended, nothing it does reaches a shared object of the
 * library; its end is always seen; no caller's timed wait outlives its
 * timeout.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { AbandonedLockError, Empty, Lock, Pipe, Pool, Queue, Value } from "../mod.ts";
import { adapter } from "../src/adapters/mod.ts";
import { checkNoLeaks } from "./leaks.ts";
import { starter } from "./starter.ts";

checkNoLeaks();

const start = starter("faults");
const module = new URL("./fixtures/faults.ts", import.meta.url);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves once `done()` holds; fails the test after `ms`. */
async function until(done: () => boolean, ms: number, what: string): Promise<void> {
  const end = performance.now() + ms;
  while (!done()) {
    if (performance.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(2);
  }
}

/** Every item waiting in `q` now, without waiting for more. */
function drain<T>(q: Queue<T>): T[] {
  const items: T[] = [];
  for (;;) {
    try {
      items.push(q.getNowait());
    } catch (error) {
      if (error instanceof Empty) return items;
      throw error;
    }
  }
}

/** Long enough for a thread that goes on running to be seen doing so (it loops without pause). */
const WATCH_MS = 300;

test("faults: a producer terminated while busy in putSync puts nothing once join() has returned", {
  timeout: 30_000,
}, async () => {
  const q = new Queue<number>();
  const done = new Int32Array(new SharedArrayBuffer(4));
  const p = start("putCounting", q, done);
  await until(() => Atomics.load(done, 0) >= 1_000, 10_000, "1,000 puts");
  p.terminate();
  await p.join(10_000);
  assert.equal(p.exitCode, -15);
  const sent = Atomics.load(done, 0);
  const got = drain(q);
  assert.ok(got.length >= sent, `every put that returned is there (${got.length} of ${sent})`);
  assert.deepEqual(got, got.map((_, i) => i), "items 0 … n-1, none missing or repeated");
  await sleep(WATCH_MS);
  assert.deepEqual(drain(q), [], "nothing arrives after the producer was reported ended");
  await q.put(-1, { timeout: 2_000 });
  assert.equal(await q.get({ timeout: 2_000 }), -1, "the queue is usable");
});

test("faults: a producer terminated while blocked in putSync on a full queue never delivers", {
  timeout: 30_000,
}, async () => {
  const q = new Queue<number>(5);
  const done = new Int32Array(new SharedArrayBuffer(4));
  const p = start("putCounting", q, done);
  await until(() => Atomics.load(done, 0) === 5, 10_000, "the queue to fill");
  await sleep(50); // the sixth put is waiting for room
  p.terminate();
  await p.join(10_000);
  assert.deepEqual(drain(q), [0, 1, 2, 3, 4]);
  await sleep(WATCH_MS);
  assert.deepEqual(drain(q), [], "the put that was blocked does not land after join()");
  await q.put(-1, { timeout: 2_000 });
  assert.equal(await q.get({ timeout: 2_000 }), -1);
});

test("faults: a process terminated while taking a Lock over and over takes it no more", {
  timeout: 30_000,
}, async () => {
  const lock = new Lock();
  const taken = new Int32Array(new SharedArrayBuffer(4));
  const p = start("lockLoop", lock, taken);
  await until(() => Atomics.load(taken, 0) >= 1_000, 10_000, "1,000 acquires");
  p.terminate();
  await p.join(10_000);
  const before = Atomics.load(taken, 0);
  // Held at its end (abandoned), or free: either way this process gets it, and holds it alone.
  try {
    assert.equal(await lock.acquire(2_000), true);
  } catch (error) {
    assert.ok(error instanceof AbandonedLockError, String(error));
    lock.release();
    assert.equal(await lock.acquire(2_000), true);
  }
  await sleep(WATCH_MS);
  assert.ok(Atomics.load(taken, 0) - before <= 1, "the ended process took the lock no more");
  assert.equal(lock.locked(), true, "still held by this process: nobody released it");
  lock.release();
});

test("faults: a process terminated while writing a Value writes it no more", { timeout: 30_000 }, async () => {
  const v = new Value("i", 0);
  const p = start("writeLoop", v);
  await until(() => v.value >= 1_000, 10_000, "1,000 writes");
  p.terminate();
  await p.join(10_000);
  const last = v.value;
  await sleep(WATCH_MS);
  assert.equal(v.value, last, "the Value did not change after join()");
});

test("faults: a process terminated while sending on a Pipe sends nothing after join()", {
  timeout: 30_000,
}, async () => {
  const [reader, writer] = Pipe<number>(false);
  const done = new Int32Array(new SharedArrayBuffer(4));
  const p = start("sendCounting", writer, done);
  writer.close();
  await until(() => Atomics.load(done, 0) >= 1_000, 10_000, "1,000 sends");
  p.terminate();
  await p.join(10_000);
  const got: number[] = [];
  while (await reader.poll(0)) {
    try {
      got.push(await reader.recv());
    } catch {
      break; // end of file: the child's end was closed for it
    }
  }
  assert.deepEqual(got, got.map((_, i) => i), "messages 0 … n-1, none missing or repeated");
  await sleep(WATCH_MS);
  assert.equal(await reader.poll(0), true, "the writer's end is closed: poll() sees the end of file");
  await assert.rejects(reader.recv(), { name: "EOFError" }, "and no message came after join()");
  reader.close();
});

for (const how of ["process", "deno"] as const) {
  test(`faults: a child that calls ${how === "deno" ? "Deno" : how}.exit(n) itself ends with exitCode n`, {
    timeout: 20_000,
    // Deno.exit exists on Deno only.
    skip: how === "deno" && adapter.runtime !== "deno" ? "Deno.exit is Deno's" : false,
  }, async () => {
    const p = start("exitOwn", how, 7);
    await p.join(10_000);
    assert.equal(p.exitCode, 7, "join() returned because the child ended");
    assert.equal(p.isAlive(), false);
  });
}

test("faults: a pool task that calls process.exit(n) fails, and the tasks after it run", { timeout: 30_000 }, async () => {
  await using pool = new Pool({ processes: 1, module });
  const exiting = pool.apply("exitInTask", [3]);
  const after = [1, 2, 3].map((x) => pool.apply("square", [x]));
  await assert.rejects(exiting, { name: "BrokenPoolError" });
  assert.deepEqual(await Promise.all(after), [1, 4, 9]);
});
