/**
 * Faults: what a process that was terminated (or that ended itself with the
 * runtime's own exit call) may still do, and what the others see. After a
 * process is reported ended, nothing it does reaches a shared object of the
 * library; its end is always seen; no caller's timed wait outlives its
 * timeout.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { AbandonedLockError, Barrier, Condition, Empty, Event, Lock, Pipe, Pool, Queue, Value } from "../mod.ts";
import { adapter } from "../src/adapters/mod.ts";
import { checkNoLeaks } from "./leaks.ts";
import { runScript } from "./scripts.ts";
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
/** Rounds of the large-item loop: the hang it guards against was seen once in about 28 runs on Bun. */
const ROUNDS = Number(process.env.MP_FAULT_ROUNDS ?? 12);

test("faults: a producer terminated while busy in putSync puts nothing once join() has returned", {
  timeout: 60_000,
}, async () => {
  const q = new Queue<number>();
  const done = new Int32Array(new SharedArrayBuffer(4));
  const p = start("putCounting", q, done);
  await until(() => Atomics.load(done, 0) >= 1_000, 30_000, "1,000 puts");
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
  timeout: 60_000,
}, async () => {
  const q = new Queue<number>(5);
  const done = new Int32Array(new SharedArrayBuffer(4));
  const p = start("putCounting", q, done);
  await until(() => Atomics.load(done, 0) === 5, 30_000, "the queue to fill");
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
  timeout: 60_000,
}, async () => {
  const lock = new Lock();
  const taken = new Int32Array(new SharedArrayBuffer(4));
  const p = start("lockLoop", lock, taken);
  await until(() => Atomics.load(taken, 0) >= 1_000, 30_000, "1,000 acquires");
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
  // Raw, so that the fence on the write itself is what is tested: a synchronized Value takes its lock for each
  // access, and a writer killed inside one leaves it abandoned (the case below).
  const v = new Value("i", 0, { lock: false });
  const p = start("writeLoop", v);
  await until(() => v.value >= 1_000, 30_000, "1,000 writes");
  p.terminate();
  await p.join(10_000);
  const last = v.value;
  await sleep(WATCH_MS);
  assert.equal(v.value, last, "the Value did not change after join()");
});

test("faults: a synchronized Value whose writer was terminated changes no more, or says its lock was abandoned", {
  timeout: 30_000,
}, async () => {
  const v = new Value("i", 0);
  const p = start("writeLoop", v);
  await until(() => v.value >= 1_000, 30_000, "1,000 writes");
  p.terminate();
  await p.join(10_000);
  const read = () => {
    try {
      return v.value;
    } catch (error) {
      assert.ok(error instanceof AbandonedLockError, `not an AbandonedLockError: ${String(error)}`);
      return "abandoned";
    }
  };
  const last = read();
  await sleep(WATCH_MS);
  assert.equal(read(), last, "the Value did not change after join()");
});

/**
 * A child changes `shared` with `target` over and over (counting in its
 * second argument) until it is terminated; then this process undoes the
 * change, and nothing may redo it once join() has returned.
 */
function noChangeAfterJoin<T>(
  what: string,
  target: string,
  make: () => T,
  undo: (shared: T) => void,
  changed: (shared: T) => boolean,
) {
  test(`faults: a process terminated while ${what} over and over does so no more`, { timeout: 30_000 }, async () => {
    const shared = make();
    const done = new Int32Array(new SharedArrayBuffer(4));
    const p = start(target, shared, done);
    await until(() => Atomics.load(done, 0) >= 1_000, 30_000, `1,000 rounds of ${what}`);
    p.terminate();
    await p.join(10_000);
    undo(shared);
    await sleep(WATCH_MS);
    assert.equal(changed(shared), false, `${what} went on after join()`);
  });
}

noChangeAfterJoin("setting an Event", "setLoop", () => new Event(), (e) => e.clear(), (e) => e.isSet());
noChangeAfterJoin("breaking a Barrier", "breakLoop", () => new Barrier(2), (b) => b.reset(), (b) => b.broken);

test("faults: waiters terminated while blocked in a Condition's waitSync take no notify meant for a live waiter", {
  timeout: 60_000,
}, async () => {
  const c = new Condition();
  const waiting = new Int32Array(new SharedArrayBuffer(8));
  const ps = [0, 1, 2].map(() => start("waitOnCondition", c, waiting));
  await until(() => Atomics.load(waiting, 0) === 3, 30_000, "three waiters");
  await sleep(100); // each is blocked in waitSync
  for (const p of ps) p.terminate();
  for (const p of ps) await p.join(10_000);
  assert.equal(await c.acquire(2_000), true);
  const notified = c.wait(5_000);
  assert.equal(await c.acquire(2_000), true);
  c.notify();
  c.release();
  // The terminated waiters go on running on Deno, and the notify wakes them: give them a head start on this
  // thread's waiter, which wakes on the event loop.
  const spin = performance.now();
  while (performance.now() - spin < 50);
  assert.equal(await notified, true, "the live waiter got the notify");
  c.release();
  await sleep(WATCH_MS);
  assert.equal(Atomics.load(waiting, 1), 0, "no terminated waiter returned from its wait");
});

test("faults: a consumer terminated while blocked in getSync takes nothing after join()", {
  timeout: 60_000,
}, async () => {
  const q = new Queue<number>();
  const taken = new Int32Array(new SharedArrayBuffer(4));
  const p = start("getCounting", q, taken);
  for (let i = 0; i < 100; i++) await q.put(i);
  await until(() => Atomics.load(taken, 0) === 100, 30_000, "the child to take 100 items");
  await sleep(50); // the child waits in getSync for the next
  p.terminate();
  await p.join(10_000);
  for (let i = 0; i < 5; i++) await q.put(i);
  await sleep(WATCH_MS);
  assert.deepEqual(drain(q), [0, 1, 2, 3, 4], "every item put after join() is still there");
  assert.equal(Atomics.load(taken, 0), 100);
});

test("faults: a reader terminated while blocked in recvSync on a Pipe reads nothing after join()", {
  timeout: 60_000,
}, async () => {
  const [reader, writer] = Pipe<number>(false);
  const taken = new Int32Array(new SharedArrayBuffer(4));
  const p = start("recvCounting", reader, taken);
  for (let i = 0; i < 100; i++) await writer.send(i);
  await until(() => Atomics.load(taken, 0) === 100, 30_000, "the child to read 100 messages");
  await sleep(50); // the child waits in recvSync for the next
  p.terminate();
  await p.join(10_000);
  for (let i = 0; i < 5; i++) await writer.send(i);
  await sleep(WATCH_MS);
  const got: number[] = [];
  while (await reader.poll(0)) got.push(await reader.recv());
  assert.deepEqual(got, [0, 1, 2, 3, 4], "every message sent after join() is still there");
  assert.equal(Atomics.load(taken, 0), 100);
  reader.close();
  writer.close();
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

test(
  "faults: a pool task that calls process.exit(n) fails, and the tasks after it run",
  { timeout: 30_000 },
  async () => {
    await using pool = new Pool({ processes: 1, module });
    const exiting = pool.apply("exitInTask", [3]);
    const after = [1, 2, 3].map((x) => pool.apply("square", [x]));
    await assert.rejects(exiting, { name: "BrokenPoolError" });
    assert.deepEqual(await Promise.all(after), [1, 4, 9]);
  },
);

for (
  const [script, output] of [
    ["daemon_exit", "started true"],
    ["sharing_daemon_exit", "lock false"],
    ["idle_pool_exit", "result 42"],
    ["open_manager", "value 1"],
  ] as const
) {
  test(`faults: a program ends once its main returns, though ${script.replace(/_exit$/, "").replace("_", " ")} runs`, {
    timeout: 60_000,
  }, async () => {
    const started = performance.now();
    const result = await runScript(`tests/fixtures/${script}.ts`, 40_000);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.trim(), output);
    assert.ok(performance.now() - started < 40_000);
  });
}

/** Bigger than a queue's ring (1 MiB), so each item is streamed in chunks. */
const HUGE = 3 << 20;

test("faults: with 3 MiB items, a reader's get({ timeout }) returns by its timeout whenever the producer dies", {
  timeout: 240_000,
}, async () => {
  for (let round = 0; round < ROUNDS; round++) {
    const q = new Queue<Uint8Array>();
    const started = new Queue<string>();
    const seen = new Int32Array(new SharedArrayBuffer(12));
    const producer = start("putHugeItems", q, started, HUGE, 4);
    const reader = start("getUntilEmpty", q, 1_000, seen);
    assert.equal(await started.get({ timeout: 30_000 }), "putting");
    await sleep((round * 7) % 40); // a different moment of the put each round
    producer.terminate();
    await producer.join(10_000);
    // The reader's last get times out 1 s after the last item: 10 s is far past any get's timeout.
    await until(() => Atomics.load(seen, 2) === 1, 10_000, `round ${round}: the reader's get to return`);
    await reader.join(10_000);
    assert.equal(reader.exitCode, 0, `round ${round}`);
    assert.equal(Atomics.load(seen, 1), 0, `round ${round}: no item arrives broken`);
    await q.put(new Uint8Array(8).fill(9), { timeout: 5_000 });
    assert.deepEqual(await q.get({ timeout: 5_000 }), new Uint8Array(8).fill(9), `round ${round}: the queue is usable`);
  }
});

test(
  "faults: a get({ timeout }) in the middle of an item whose writer stalls returns by its timeout, and the next get finishes the item",
  {
    timeout: 60_000,
  },
  async () => {
    const q = new Queue<Uint8Array>();
    const started = new Queue<string>();
    const p = start("putHugeThenStall", q, started, HUGE, 4_000);
    assert.equal(await started.get({ timeout: 30_000 }), "stalled");
    const before = performance.now();
    await assert.rejects(q.get({ timeout: 300 }), Empty);
    const waited = performance.now() - before;
    assert.ok(waited < 2_000, `get({ timeout: 300 }) returned after ${Math.round(waited)} ms`);
    const item = await q.get({ timeout: 30_000 });
    assert.equal(item.length, HUGE, "the item arrives whole, none of it lost to the timed-out get");
    assert.ok(item.every((b) => b === 7));
    await p.join(30_000);
    assert.equal(p.exitCode, 0);
  },
);
