/**
 * This library's shared objects sent through a Queue or a Connection (not in
 * `args`): they arrive as working objects that share state with the original,
 * as Python's resource sharer sends a Connection, and beyond Python for a
 * Lock, Value, Event, Queue and SharedArrayBuffer.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  AbandonedLockError,
  Barrier,
  BoundedSemaphore,
  Condition,
  Empty,
  EOFError,
  Event,
  JoinableQueue,
  Lock,
  Pipe,
  Process,
  Queue,
  RawArray,
  RawValue,
  RLock,
  Semaphore,
  SharedArray,
  SharedMemory,
  SimpleQueue,
  Value,
} from "../mod.ts";
import { pickle, SENDS, unpickle } from "../src/pickle.ts";
import { sharerCounts } from "../src/resource_sharer.ts";
import type { Connection } from "../mod.ts";
import { checkNoLeaks } from "./leaks.ts";
import { starter } from "./starter.ts";

checkNoLeaks();

const start = starter("transfer");

/** Resolves once `done()` holds; fails the test after `ms`. */
async function until(done: () => boolean, ms: number, what: string): Promise<void> {
  const end = performance.now() + ms;
  while (!done()) {
    if (performance.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Keeps the main thread busy, with no turn of its event loop, until `done()` holds or `ms` pass; says which. */
function spinUntil(done: () => boolean, ms: number): boolean {
  const end = Date.now() + ms;
  while (!done()) {
    if (Date.now() > end) return false;
  }
  return true;
}

test("transfer: a pipe end put on a Queue by the parent works in the child, both ways, to end-of-file", {
  timeout: 20_000,
}, async () => {
  const q = new Queue();
  const report = new Queue();
  const p = start("useEndFromQueue", q, report);
  const [mine, theirs] = Pipe();
  await q.put(theirs);
  theirs.close();
  await mine.send("ping");
  assert.equal(await mine.recv(), "pong ping");
  mine.close();
  assert.equal(await report.get({ timeout: 10_000 }), "EOFError", "the child's recv ends when the parent closes");
  await p.join(10_000);
  assert.equal(p.exitCode, 0);
});

test("transfer: a pipe end put on a Queue by a child works in the parent, both ways, to end-of-file", {
  timeout: 20_000,
}, async () => {
  const q = new Queue();
  const p = start("offerEnd", q);
  const end = await q.get({ timeout: 10_000 }) as Connection;
  assert.equal(await end.recv(), "hello from the child");
  await end.send("hi");
  assert.equal(await end.recv(), "child got hi");
  await assert.rejects(end.recv(), EOFError);
  end.close();
  await p.join(10_000);
  assert.equal(p.exitCode, 0);
});

test("transfer: a Connection sent through a Connection arrives as a working end", { timeout: 20_000 }, async () => {
  const [a, b] = Pipe();
  const [x, y] = Pipe();
  const p = start("useSentConnection", b);
  b.close();
  await a.send(y);
  y.close();
  assert.equal(await x.recv(), "hi over the received end");
  await assert.rejects(x.recv(), EOFError, "the child's copy was its only other handle");
  await p.join(10_000);
  assert.equal(p.exitCode, 0);
  (a.close(), x.close());
});

test(
  "transfer: a Lock, Value, Event, Queue and a view of a SharedArrayBuffer through a Queue are the same objects in the child",
  {
    timeout: 20_000,
  },
  async () => {
    const q = new Queue();
    const report = new Queue();
    const go = new Queue();
    const lock = new Lock();
    const value = new Value("i", 5);
    const event = new Event();
    const back = new Queue<string>();
    assert.equal(await lock.acquire(), true);
    const p = start("useShared", q, report, go);
    const cells = new Int32Array(new SharedArrayBuffer(16), 4, 2);
    await q.put({ lock, value, event, back, cells });
    assert.deepEqual(await report.get({ timeout: 10_000 }), ["held by the parent", false]);
    lock.release();
    await go.put("release");
    assert.deepEqual(await report.get({ timeout: 10_000 }), ["taken after release", true]);
    assert.deepEqual(await report.get({ timeout: 10_000 }), ["value seen", 5]);
    assert.equal(await event.wait(10_000), true, "the child set the parent's event");
    assert.equal(value.value, 42, "the child wrote the parent's value");
    assert.equal(Atomics.load(cells, 1), 99, "and into the parent's SharedArrayBuffer, through a view at an offset");
    assert.equal(await back.get({ timeout: 10_000 }), "over the received queue");
    assert.equal(await lock.acquire({ timeout: 100 }), false, "the child holds the parent's lock");
    await go.put("done");
    await p.join(10_000);
    assert.equal(p.exitCode, 0);
    assert.equal(await lock.acquire({ timeout: 5_000 }), true, "released by the child");
    lock.release();
  },
);

test("transfer: what a child put before it ended is still shared when it is read, in the parent and in another child", {
  timeout: 30_000,
}, async () => {
  const q = new Queue();
  const report = new Queue();
  const first = start("putAndEnd", q);
  await first.join(10_000);
  assert.equal(first.exitCode, 0);
  const second = start("putAndEnd", q);
  await second.join(10_000);
  assert.equal(second.exitCode, 0);
  const mine = await q.get({ timeout: 10_000 }) as {
    value: Value<"i">;
    lock: Lock;
    end: Connection;
    cells: Int32Array;
  };
  assert.equal(mine.value.value, 7);
  assert.equal(mine.cells[1], 5);
  await assert.rejects(mine.lock.acquire({ timeout: 5_000 }), AbandonedLockError, "the same lock, held by the dead");
  assert.equal(await mine.end.recv(), "sent before the end");
  await assert.rejects(mine.end.recv(), EOFError);
  mine.end.close();
  // The second item is taken by another child, after its sender ended.
  const taker = start("takeAfterEnd", q, report);
  assert.deepEqual(await report.get({ timeout: 10_000 }), ["sent before the end", "EOFError"]);
  await taker.join(10_000);
  assert.equal(taker.exitCode, 0);
});

test("transfer: what cannot travel fails at put/send, naming it, and nothing is sent", { timeout: 5_000 }, async () => {
  const q = new Queue();
  const [a, b] = Pipe();
  const process = new Process({ target: "putAndEnd", module: new URL("./fixtures/transfer.ts", import.meta.url) });
  assert.throws(
    () => q.putNowait({ worker: process }),
    /Queue\.putNowait\(obj\)\.worker is an instance of Process, which cannot be sent to another process/,
  );
  assert.throws(() => a.send([new (class Secret {})()]), /Connection\.send\(obj\)\[0\] is an instance of Secret/);
  assert.equal(q.qsize(), 0);
  assert.equal(await b.poll(), false);
  (a.close(), b.close());
});

test(
  "transfer: every other shared kind arrives working: RLock, Semaphore, BoundedSemaphore, Condition, Barrier, SharedArray, RawArray, RawValue, JoinableQueue, SimpleQueue, SharedMemory",
  {
    timeout: 30_000,
  },
  async () => {
    const q = new Queue();
    const report = new Queue();
    const rlock = new RLock();
    await rlock.acquire();
    const semaphore = new Semaphore(1);
    const bounded = new BoundedSemaphore(1);
    const condition = new Condition();
    const barrier = new Barrier(2);
    const array = new SharedArray("i", 4);
    const raw = new RawArray("b", 2);
    const rawValue = new RawValue("d", 0);
    const joinable = new JoinableQueue<string>();
    await joinable.put("a job");
    const simple = new SimpleQueue<string>();
    const memory = new SharedMemory({ create: true, size: 8 });
    await condition.acquire();
    const p = start("useEveryKind", q, report);
    await q.put({ rlock, semaphore, bounded, condition, barrier, array, raw, rawValue, joinable, simple, memory });
    assert.equal(await condition.wait(10_000), true, "the child notified the parent's condition");
    condition.release();
    const seen = await report.get({ timeout: 10_000 }) as Record<string, unknown>;
    assert.match(String(seen.boundedOverRelease), /released too many times/, "the parent's count, at its maximum");
    delete seen.boundedOverRelease;
    assert.deepEqual(seen, { rlockHeldByParent: true, semaphoreHasOne: true, joinable: "a job" });
    assert.equal(await barrier.wait(10_000) >= 0, true);
    assert.equal(await report.get({ timeout: 10_000 }), true, "both passed the barrier");
    assert.deepEqual(array.toArray(), [0, 0, 20, 0]);
    assert.deepEqual(raw.toArray(), [9, 0]);
    assert.equal(rawValue.value, 1.5);
    assert.equal(memory.buf[0], 77);
    assert.equal(await simple.get(), "over the simple queue");
    await joinable.join();
    assert.equal(await semaphore.acquire({ timeout: 100 }), false, "the child took the parent's semaphore");
    await p.join(10_000);
    assert.equal(p.exitCode, 0);
    rlock.release();
    (memory.close(), memory.unlink());
  },
);

test(
  "transfer: in one process, put and got back, an object is the same one; a main process busy in synchronous code delays a child's put, which then arrives whole",
  {
    timeout: 20_000,
  },
  async () => {
    const q = new Queue();
    const value = new Value("i", 1);
    await q.put(value);
    const back = await q.get({ timeout: 5_000 }) as Value<"i">;
    back.value = 3;
    assert.equal(value.value, 3);
    // The child's put waits until the main process, from its event loop, holds the buffers: while the main
    // thread is busy nothing is put, and nothing is lost.
    const cell = new Int32Array(new SharedArrayBuffer(8));
    const p = start("putWhenTold", q, cell);
    const running = Date.now() + 10_000;
    while (Atomics.load(cell, 0) === 0 && Date.now() < running) await new Promise((done) => setTimeout(done, 5));
    Atomics.store(cell, 1, 1);
    Atomics.notify(cell, 1);
    const busy = Date.now() + 300;
    while (Date.now() < busy) {
      // Busy, on purpose: no turn of the event loop.
    }
    assert.equal(q.empty(), true, "the put waits for the main process");
    assert.equal((await q.get({ timeout: 10_000 }) as Value<"i">).value, 7);
    await p.join(10_000);
    assert.equal(p.exitCode, 0);
  },
);

test("transfer: a grandchild's item reaches the main process (its port to the sharer came through its parent)", {
  timeout: 20_000,
}, async () => {
  const q = new Queue();
  const p = start("startGrandchild", q);
  const item = await q.get({ timeout: 10_000 }) as { value: Value<"i">; end: Connection; cells: Int32Array };
  assert.equal(item.value.value, 7);
  assert.equal(item.cells[1], 5);
  assert.equal(await item.end.recv(), "sent before the end");
  item.end.close();
  await p.join(10_000);
  assert.equal(p.exitCode, 0);
});

test("transfer: a sender terminated after its put leaves a working item", { timeout: 20_000 }, async () => {
  const q = new Queue();
  const p = start("putAndHang", q);
  const { value, end } = await q.get({ timeout: 10_000 }) as { value: Value<"d">; end: Connection };
  p.terminate();
  await p.join(10_000);
  assert.equal(p.exitCode, -15);
  assert.equal(value.value, 2.5);
  assert.equal(await end.recv(), "before the kill");
  await assert.rejects(end.recv(), EOFError, "the killed child's end closed with it");
  end.close();
});

test("transfer: the same bytes received twice fail the second time, naming the object", { timeout: 5_000 }, () => {
  const lock = new Lock();
  const bytes = pickle({ lock }, "send(obj)", SENDS).slice();
  const first = unpickle(bytes) as { lock: Lock };
  assert.equal(first.lock.locked(), false);
  assert.throws(() => unpickle(bytes), /cannot receive a Lock: it was received once already/);
});

// The two windows below are held open by the main thread: the sharer answers only from its event loop, so while the
// main thread spins, a child that has asked it something waits in the middle of its transfer, and is killed there.

test(
  "transfer: a receiver terminated in the middle of its fetch leaves nothing parked, and the next receiver gets the next item",
  { timeout: 30_000 },
  async () => {
    const q = new Queue();
    const report = new Queue();
    const cell = new Int32Array(new SharedArrayBuffer(4));
    const p = start("takeAndReport", q, report, cell);
    await until(() => Atomics.load(cell, 0) === 1, 10_000, "the child to be about to take an item");
    q.putNowait({ value: new Value("i", 5) });
    assert.equal(sharerCounts().parked, 1, "the main process parked the Value's buffer");
    // The child has taken the bytes once the queue counts no item; it then asks the sharer for the buffer, and
    // no answer can come while this thread spins. 200 ms more is far longer than the microseconds it takes to ask.
    assert.equal(spinUntil(() => q.qsize() === 0, 10_000), true, "the child took the item's bytes");
    spinUntil(() => false, 200);
    p.terminate();
    await p.join(10_000);
    assert.equal(p.exitCode, -15);
    await assert.rejects(report.get({ timeout: 500 }), Empty, "the killed receiver reported nothing");
    await until(() => sharerCounts().parked === 0, 5_000, "the sharer to hand the buffer to the fetch that came");
    q.putNowait({ value: new Value("i", 6) });
    const next = start("takeAndReport", q, report, new Int32Array(new SharedArrayBuffer(4)));
    assert.equal(await report.get({ timeout: 10_000 }), 6, "the next receiver gets the next item, working");
    await next.join(10_000);
    assert.equal(next.exitCode, 0);
    assert.equal(sharerCounts().parked, 0);
  },
);

/**
 * Starts `target(arg, cell)`, tells it to send a Value, and terminates it while it waits for the sharer's answer to
 * its park: the child makes the Value and asks at once, and no answer can come while this thread spins. Returns the
 * sharer's counts from before.
 */
async function killWhileParking(target: string, arg: unknown): Promise<ReturnType<typeof sharerCounts>> {
  const cell = new Int32Array(new SharedArrayBuffer(8));
  const p = start(target, arg, cell);
  await until(() => Atomics.load(cell, 0) === 1, 10_000, "the child to be ready to send");
  const before = sharerCounts();
  Atomics.store(cell, 1, 1);
  Atomics.notify(cell, 1);
  spinUntil(() => false, 500);
  p.terminate();
  await p.join(10_000);
  assert.equal(p.exitCode, -15);
  return before;
}

/** Waits until the killed sender's park has reached the main process (on Deno, late), then until it is dropped. */
async function parkingDropped(before: ReturnType<typeof sharerCounts>): Promise<void> {
  await until(() => sharerCounts().parksHeard > before.parksHeard, 10_000, "the killed sender's park to arrive");
  // On the old code the parking stayed for good.
  await until(() => sharerCounts().parked === before.parked, 5_000, "the sharer to drop the killed sender's parking");
}

test(
  "transfer: a sender terminated while it waits for the main process's answer puts nothing and leaves nothing parked; the queue goes on",
  { timeout: 30_000 },
  async () => {
    const q = new Queue();
    const before = await killWhileParking("putWhenTold", q);
    assert.equal(q.empty(), true);
    assert.throws(() => q.getNowait(), Empty, "no half item");
    await assert.rejects(q.get({ timeout: 500 }), Empty, "a reader waits only its timeout");
    await parkingDropped(before);
    const again = new Int32Array(new SharedArrayBuffer(8));
    Atomics.store(again, 1, 1);
    const next = start("putWhenTold", q, again);
    assert.equal((await q.get({ timeout: 10_000 }) as Value<"i">).value, 7, "another sender's item arrives whole");
    await next.join(10_000);
    assert.equal(next.exitCode, 0);
  },
);

test(
  "transfer: a sender terminated while it waits for the main process's answer to a pipe send leaves end-of-file, nothing parked",
  { timeout: 30_000 },
  async () => {
    const [mine, theirs] = Pipe();
    const before = await killWhileParking("sendWhenTold", theirs);
    theirs.close();
    await assert.rejects(mine.recv(), EOFError, "no half message: the killed sender's end closed with it");
    await parkingDropped(before);
    mine.close();
  },
);
