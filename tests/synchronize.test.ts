import { test } from "node:test";
import assert from "node:assert/strict";
import {
  AbandonedLockError,
  Barrier,
  BoundedSemaphore,
  BrokenBarrierError,
  Condition,
  Event,
  HOLDER_CHECK_MS,
  Lock,
  type Process,
  RLock,
  Semaphore,
  SharedArray,
  TimeoutError,
  Value,
} from "../mod.ts";
import { withoutNativeWaitAsync } from "../src/wait.ts";
import { answererAsync } from "./fixtures/condition.ts";
import { countTrips, setTally } from "./fixtures/synchronize.ts";
import { checkNoLeaks } from "./leaks.ts";
import { starter } from "./starter.ts";
import { runScript } from "./scripts.ts";

checkNoLeaks();

const module = new URL("./fixtures/synchronize.ts", import.meta.url);
const start = starter("synchronize");

async function joinAll(...processes: Process[]): Promise<void> {
  await Promise.all(processes.map((p) => p.join(20_000)));
  assert.deepEqual(processes.map((p) => p.exitCode), processes.map(() => 0), "every child ends with exit code 0");
}

async function elapsed(body: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await body();
  return performance.now() - t0;
}

test("lock: two processes increment a Value 10,000 times each under its lock, and the total is exact", {
  timeout: 40_000,
}, async () => {
  const counter = new Value("i", 0);
  await joinAll(start("bump", counter, 10_000), start("bump", counter, 10_000));
  assert.equal(counter.value, 20_000);
});

test("lock: async acquire in two children and the main thread keeps the count exact", { timeout: 40_000 }, async () => {
  const counter = new Value("i", 0);
  const children = [start("bumpAsync", counter, 2_000), start("bump", counter, 2_000)];
  const lock = counter.getLock();
  for (let i = 0; i < 2_000; i++) {
    using _held = await lock.guard();
    counter.value += 1;
  }
  await joinAll(...children);
  assert.equal(counter.value, 6_000);
});

test(
  "lock: acquire with a timeout resolves false after about that long, { block: false } at once",
  { timeout: 10_000 },
  async () => {
    const lock = new Lock();
    assert.equal(await lock.acquire(), true);
    let result: boolean | undefined;
    const ms = await elapsed(async () => (result = await lock.acquire(150)));
    assert.equal(result, false);
    assert.ok(ms >= 140 && ms < 1_000, `waited ${ms} ms for a 150 ms timeout`);
    assert.equal(await lock.acquire({ block: false }), false);
    assert.equal(await lock.acquire({ timeout: 0 }), false);
    lock.release();
    assert.equal(await lock.acquire({ block: false }), true);
    lock.release();
  },
);

test("lock: bad timeouts throw RangeError, release of an unlocked Lock throws, Sync on the main thread throws", {
  timeout: 10_000,
}, async () => {
  const lock = new Lock();
  await assert.rejects(lock.acquire(NaN), RangeError);
  await assert.rejects(lock.acquire({ timeout: -1 }), /timeout must be a number of milliseconds >= 0, got -1/);
  assert.throws(() => lock.release(), /cannot release a Lock that is not locked/);
  assert.throws(() => lock.acquireSync(), /Lock\.acquireSync blocks its thread.*main thread must not block/);
  assert.equal(lock.locked(), false);
});

test("lock: guard() releases at the end of a using block; a guard that times out throws TimeoutError", {
  timeout: 10_000,
}, async () => {
  const lock = new Lock();
  {
    using _held = await lock.guard();
    assert.equal(lock.locked(), true);
    await assert.rejects(lock.guard(50), TimeoutError);
  }
  assert.equal(lock.locked(), false);
  const held = await lock.guard();
  held.release();
  held[Symbol.dispose]();
  assert.equal(lock.locked(), false, "a guard releases once");
});

test("lock: an abort signal rejects a waiting acquire with its reason and leaves the lock as it was", {
  timeout: 10_000,
}, async () => {
  const lock = new Lock();
  await lock.acquire();
  const controller = new AbortController();
  const waiting = lock.acquire({ signal: controller.signal });
  setTimeout(() => controller.abort(new Error("stop waiting")), 30);
  await assert.rejects(waiting, /stop waiting/);
  await assert.rejects(lock.acquire({ signal: AbortSignal.abort(new Error("already")) }), /already/);
  assert.equal(lock.locked(), true);
  lock.release();
  assert.equal(await lock.acquire(100), true, "the lock is free for the next one");
  lock.release();
});

test("lock: a child's release hands the lock to an async acquire on the main thread", { timeout: 20_000 }, async () => {
  const lock = new Lock();
  const held = new Event();
  const done = new Event();
  const child = start("holdUntil", lock, held, done);
  assert.equal(await held.wait(10_000), true);
  assert.equal(await lock.acquire({ block: false }), false, "the child holds it");
  setTimeout(() => done.set(), 50);
  assert.equal(await lock.acquire(10_000), true);
  lock.release();
  await joinAll(child);
});

test("lock: every async wait works on the fallback without Atomics.waitAsync", { timeout: 20_000 }, async () => {
  await withoutNativeWaitAsync(async () => {
    const lock = new Lock();
    const held = new Event();
    const done = new Event();
    const child = start("holdUntil", lock, held, done);
    assert.equal(await held.wait(10_000), true);
    setTimeout(() => done.set(), 30);
    assert.equal(await lock.acquire(10_000), true);
    lock.release();
    await joinAll(child);

    const cond = new Condition();
    const count = new Value("i", 0);
    const raiser = start("raise", cond, count, 3);
    await cond.acquire();
    assert.equal(await cond.waitFor(() => count.value >= 3, 10_000), true);
    cond.release();
    await joinAll(raiser);

    const sem = new Semaphore(0);
    const releaser = start("releaseLater", sem, 30);
    assert.equal(await sem.acquire(10_000), true);
    await joinAll(releaser);

    const barrier = new Barrier(2);
    const slots = new SharedArray("i", 1);
    const partner = start("party", barrier, slots, 0);
    const index = await barrier.wait(10_000);
    await joinAll(partner);
    assert.deepEqual([index, slots.get(0)].sort(), [0, 1]);
  });
});

test("lock: a holder that ends without releasing fails the waiters with AbandonedLockError naming its pid", {
  timeout: 20_000,
}, async () => {
  const lock = new Lock();
  const held = new Event();
  const child = start("holdAndEnd", lock, held, 0);
  assert.equal(await held.wait(10_000), true);
  await child.join(10_000);
  const ms = await elapsed(() =>
    assert.rejects(lock.acquire(5_000), (error: unknown) => {
      assert.ok(error instanceof AbandonedLockError);
      assert.equal(error.holder, child.pid);
      assert.match(error.message, new RegExp(`held by process ${child.pid}, which ended without releasing it`));
      return true;
    })
  );
  assert.ok(ms < 1_000, `failed after ${ms} ms`);
  lock.release();
  assert.equal(await lock.acquire(100), true, "a Lock released by another process is usable again");
  lock.release();
});

test(
  "lock: a waiter already blocked when the holder is killed fails within the holder check",
  { timeout: 20_000 },
  async () => {
    const lock = new RLock();
    const held = new Event();
    const child = start("holdUntil", lock, held, new Event());
    assert.equal(await held.wait(10_000), true);
    const waiting = lock.acquire(10_000);
    const t0 = performance.now();
    child.kill();
    await assert.rejects(waiting, AbandonedLockError);
    const ms = performance.now() - t0;
    assert.ok(ms < HOLDER_CHECK_MS + 1_000, `noticed after ${ms} ms`);
    await child.join(10_000);
    assert.equal(child.exitCode, -9);
  },
);

test("rlock: the holder re-enters; another process's release throws; release to the last level frees it", {
  timeout: 20_000,
}, async () => {
  const lock = new RLock();
  assert.equal(await lock.acquire(), true);
  assert.equal(await lock.acquire({ block: false }), true);
  assert.equal(String(lock).replace(/\d+,/, "PID,"), "<RLock(owner=PID, count=2)>");
  lock.release();
  assert.equal(lock.locked(), true);
  lock.release();
  assert.equal(lock.locked(), false);
  assert.throws(() => lock.release(), /cannot release an RLock that this process does not hold/);

  const held = new Event();
  const done = new Event();
  const child = start("holdUntil", lock, held, done);
  assert.equal(await held.wait(10_000), true);
  assert.throws(() => lock.release(), /cannot release an RLock that this process does not hold/);
  assert.equal(await lock.acquire({ block: false }), false);
  done.set();
  assert.equal(await lock.acquire(10_000), true);
  lock.release();
  await joinAll(child);
});

test("semaphore: Semaphore(2) lets at most two of three processes in at once", { timeout: 20_000 }, async () => {
  const sem = new Semaphore(2);
  const inside = new Value("i", 0);
  const most = new Value("i", 0);
  const go = new Event();
  const children = [0, 1, 2].map(() => start("crowd", sem, inside, most, go));
  go.set();
  await joinAll(...children);
  assert.equal(most.value, 2);
  assert.equal(sem.getValue(), 2);
});

test("semaphore: bad values throw, acquire counts down, BoundedSemaphore refuses to go above its start", {
  timeout: 10_000,
}, async () => {
  assert.throws(() => new Semaphore(-1), RangeError);
  assert.throws(() => new Semaphore(1.5), TypeError);
  assert.throws(() => new BoundedSemaphore(-1), /new BoundedSemaphore: value must be between 0/);
  const sem = new Semaphore(0);
  assert.equal(sem.locked(), true);
  assert.equal(await sem.acquire(20), false);
  sem.release();
  sem.release();
  assert.equal(sem.getValue(), 2, "a plain Semaphore may go above its start");
  assert.equal(String(sem), "<Semaphore(value=2)>");
  const bounded = new BoundedSemaphore(2);
  assert.throws(() => bounded.release(), /BoundedSemaphore released too many times/);
  await bounded.acquire();
  bounded.release();
  assert.equal(String(bounded), "<BoundedSemaphore(value=2, maxvalue=2)>");
});

test("semaphore: a BoundedSemaphore sent to a child keeps its bound there", { timeout: 20_000 }, async () => {
  const sem = new BoundedSemaphore(1);
  await sem.acquire();
  const result = new Value("i", 0);
  await joinAll(start("releaseTwice", sem, result));
  assert.equal(result.value, 1);
  assert.equal(sem.getValue(), 1);
});

test(
  "condition: notify(1) wakes exactly one of three waiting processes, notifyAll the rest",
  { timeout: 30_000 },
  async () => {
    const cond = new Condition();
    const waiting = new Value("i", 0);
    const woken = new Value("i", 0);
    const children = [0, 1, 2].map(() => start("await1", cond, waiting, woken, 10_000));
    const deadline = Date.now() + 10_000;
    while (waiting.value < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    // Each child counts itself before its wait releases the lock: holding it proves all three wait.
    await cond.acquire();
    cond.notify(1);
    cond.release();
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(woken.value, 1, "one waiter woke");
    await cond.acquire();
    cond.notifyAll();
    cond.release();
    await joinAll(...children);
    assert.equal(woken.value, 3);
  },
);

test(
  "condition: wait times out with false and keeps the lock; wait/notify without the lock throw",
  { timeout: 10_000 },
  async () => {
    const cond = new Condition(new Lock());
    await assert.rejects(cond.wait(10), /Condition\.wait: this process must hold the condition's lock/);
    assert.throws(() => cond.notify(), /Condition\.notify: this process must hold/);
    assert.throws(() => new Condition(new Semaphore() as never), /lock must be a Lock or an RLock/);
    await cond.acquire();
    let result: boolean | undefined;
    const ms = await elapsed(async () => (result = await cond.wait(100)));
    assert.equal(result, false);
    assert.ok(ms >= 90 && ms < 1_000, `waited ${ms} ms`);
    assert.equal(await new Lock().acquire({ block: false }), true);
    cond.notify();
    cond.release();
    await assert.rejects(cond.wait(NaN), RangeError);
  },
);

test(
  "condition: with an RLock held twice, wait releases both levels and restores them",
  { timeout: 20_000 },
  async () => {
    const cond = new Condition();
    const count = new Value("i", 0);
    await cond.acquire();
    await cond.acquire();
    const raiser = start("raise", cond, count, 2);
    assert.equal(await cond.waitFor(() => count.value >= 2, 10_000), true);
    cond.release();
    cond.release();
    assert.throws(() => cond.release(), /does not hold/, "both levels were restored, and only both");
    await joinAll(raiser);
  },
);

test("condition: waitFor in a child resolves when the main thread raises the count, false on timeout", {
  timeout: 20_000,
}, async () => {
  const cond = new Condition();
  const count = new Value("i", 0);
  const result = new Value("i", 0);
  const child = start("awaitCount", cond, count, 3, result);
  for (let i = 0; i < 3; i++) {
    await new Promise((r) => setTimeout(r, 20));
    using _held = await cond.guard();
    count.value += 1;
    cond.notifyAll();
  }
  await joinAll(child);
  assert.equal(result.value, 1);
  using _held = await cond.guard();
  assert.equal(await cond.waitFor(() => count.value > 10, 50), false);
});

test("condition: an abort while waiting rejects and still gives the lock back", { timeout: 10_000 }, async () => {
  const cond = new Condition();
  await cond.acquire();
  await assert.rejects(cond.wait({ signal: AbortSignal.timeout(30) }), { name: "TimeoutError" });
  cond.release();
  assert.equal(cond.toString(), "<Condition(<RLock(owner=None)>, 0)>", "no waiter is left behind");
});

test(
  "event: wait resolves false on timeout, true once a child sets it; clear resets it",
  { timeout: 20_000 },
  async () => {
    const event = new Event();
    let result: boolean | undefined;
    const ms = await elapsed(async () => (result = await event.wait(100)));
    assert.equal(result, false);
    assert.ok(ms >= 90 && ms < 1_000, `waited ${ms} ms`);
    const child = start("setLater", event, 50);
    assert.equal(await event.wait(10_000), true);
    assert.equal(event.isSet(), true);
    await joinAll(child);
    event.clear();
    assert.equal(event.isSet(), false);
    const seen = new Value("i", 0);
    const waiter = start("waitEvent", event, 10_000, seen);
    await new Promise((r) => setTimeout(r, 50));
    event.set();
    await joinAll(waiter);
    assert.equal(seen.value, 1);
    await assert.rejects(event.wait(-5), RangeError);
  },
);

test(
  "barrier: three parties in three processes get the indexes 0, 1, 2 and the action runs once",
  { timeout: 20_000 },
  async () => {
    const tally = new Value("i", 0);
    setTally(tally);
    const barrier = new Barrier(3, { action: countTrips, module });
    const children = [0, 1].map(() => start("partyWithTally", barrier, tally));
    const mine = await barrier.wait(10_000);
    await joinAll(...children);
    assert.equal(tally.value, 1);
    assert.ok([0, 1, 2].includes(mine));
  },
);

test(
  "barrier: parties meet again and again; nWaiting, parties and broken report the state",
  { timeout: 20_000 },
  async () => {
    const barrier = new Barrier(3);
    const slots = new SharedArray("i", 2);
    const children = [0, 1].map((slot) => start("rounds", barrier, slots, slot, 20));
    for (let i = 0; i < 20; i++) await barrier.wait(10_000);
    await joinAll(...children);
    assert.deepEqual(slots.toArray(), [20, 20]);
    assert.equal(barrier.parties, 3);
    assert.equal(barrier.nWaiting, 0);
    assert.equal(barrier.broken, false);
  },
);

test(
  "barrier: a wait that times out breaks it for every waiter; abort breaks it; reset mends it",
  { timeout: 20_000 },
  async () => {
    assert.throws(() => new Barrier(0), RangeError);
    assert.throws(() => new Barrier(2.5), /parties must be an integer from 1/);
    const barrier = new Barrier(3);
    const slots = new SharedArray("i", [9]);
    const child = start("party", barrier, slots, 0, 10_000);
    const deadline = Date.now() + 10_000;
    while (barrier.nWaiting < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    await assert.rejects(barrier.wait(100), BrokenBarrierError);
    await joinAll(child);
    assert.equal(slots.get(0), -1, "the other waiter got BrokenBarrierError too");
    assert.equal(barrier.broken, true);
    await assert.rejects(barrier.wait(), BrokenBarrierError);
    barrier.reset();
    assert.equal(barrier.broken, false);
    barrier.abort();
    await assert.rejects(barrier.wait(), BrokenBarrierError);
    barrier.reset();
    const one = new Barrier(1, { timeout: 50 });
    assert.equal(await one.wait(), 0);
  },
);

test(
  "barrier: reset while a party waits gives it BrokenBarrierError; the barrier then works",
  { timeout: 20_000 },
  async () => {
    const barrier = new Barrier(2);
    const slots = new SharedArray("i", [9, 9]);
    const first = start("party", barrier, slots, 0, 10_000);
    const deadline = Date.now() + 10_000;
    while (barrier.nWaiting < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    barrier.reset();
    await joinAll(first);
    assert.equal(slots.get(0), -1);
    const second = start("party", barrier, slots, 1, 10_000);
    const index = await barrier.wait(10_000);
    await joinAll(second);
    assert.deepEqual([index, slots.get(1)].sort(), [0, 1]);
  },
);

test(
  "barrier: an action that throws breaks the barrier; its error goes to the last party",
  { timeout: 10_000 },
  async () => {
    const barrier = new Barrier(1, {
      action: () => {
        throw new Error("action failed");
      },
    });
    await assert.rejects(barrier.wait(), /action failed/);
    assert.equal(barrier.broken, true);
  },
);

test("sync: a pending async wait keeps the program alive until it ends", { timeout: 30_000 }, async () => {
  const result = await runScript(new URL("./fixtures/pending_wait.ts", import.meta.url).pathname);
  assert.equal(result.stderr, "");
  assert.equal(result.stdout, "event false\nlock false\ncondition false\n");
  assert.equal(result.code, 0);
});

// The cells of the ping-pong board: see tests/fixtures/condition.ts.
const PINGPONG_ROUNDS = 2_000;

function board(): SharedArray<"i"> {
  return new SharedArray("i", 7);
}

function assertPlayed(cells: SharedArray<"i">, rounds: number): void {
  const [moves, openerRounds, answererRounds, ...faults] = cells.toArray();
  assert.deepEqual(
    { moves, openerRounds, answererRounds, timeouts: faults.slice(0, 2), wrongTurn: faults.slice(2, 4) },
    { moves: 2 * rounds + 1, openerRounds: rounds, answererRounds: rounds, timeouts: [0, 0], wrongTurn: [0, 0] },
    "every round was played in turn and no wait timed out",
  );
}

for (const notifier of ["notify", "notifyAll"] as const) {
  test(
    `condition: a ${notifier}()-then-wait() ping-pong of ${PINGPONG_ROUNDS} rounds between two processes never loses a wake-up`,
    {
      timeout: 60_000,
    },
    async () => {
      const cond = new Condition();
      const cells = board();
      const all = notifier === "notifyAll";
      const start = starter("condition");
      await joinAll(
        start("answerer", cond, cells, PINGPONG_ROUNDS, 10_000, all),
        start("opener", cond, cells, PINGPONG_ROUNDS, 10_000, all),
      );
      assertPlayed(cells, PINGPONG_ROUNDS);
    },
  );
}

test("condition: the main thread's async wait() plays the ping-pong against a child without a lost wake-up", {
  timeout: 60_000,
}, async () => {
  const cond = new Condition();
  const cells = board();
  const rounds = PINGPONG_ROUNDS;
  const opener = starter("condition")("opener", cond, cells, rounds, 10_000);
  await answererAsync(cond, cells, rounds, 10_000);
  await joinAll(opener);
  assertPlayed(cells, rounds);
});
