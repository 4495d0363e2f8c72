import { test } from "node:test";
import assert from "node:assert/strict";
import { Empty, Full, JoinableQueue, Lock, Queue, SimpleQueue } from "../mod.ts";
import { withoutNativeWaitAsync } from "../src/wait.ts";
import { reduce } from "../src/reduction.ts";
import { CELLS, SENT } from "../src/ring_layout.ts";
import { checkNoLeaks } from "./leaks.ts";
import { starter } from "./starter.ts";
import { runScript } from "./scripts.ts";

checkNoLeaks();

const start = starter("queues");
/** Bigger than a queue's ring (1 MiB), so it is streamed in chunks. */
const HUGE = 3 << 20;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test("queues: an item put in a child arrives in the main process, copied faithfully", { timeout: 20_000 }, async () => {
  const cyclic: Record<string, unknown> = { name: "loop" };
  cyclic.self = cyclic;
  const items = [
    [42, null, "hello"],
    { n: -0, nan: NaN, inf: -Infinity, big: 2n ** 70n, undef: undefined, text: "žluťoučký kůň 🐎" },
    new Map<unknown, unknown>([[1, new Set(["a"])], ["d", new Date(86_400_000)]]),
    new Float64Array([1.5, -2.25]),
    cyclic,
    /ab+c/gi,
    new RangeError("bad range"),
  ];
  const q = new Queue();
  const p = start("putAll", q, items);
  const got = [];
  for (let i = 0; i < items.length; i++) got.push(await q.get({ timeout: 10_000 }));
  await p.join(10_000);
  assert.deepEqual(got[0], [42, null, "hello"]);
  const scalars = got[1] as Record<string, unknown>;
  assert.ok(Object.is(scalars.n, -0) && Number.isNaN(scalars.nan) && scalars.inf === -Infinity);
  assert.equal(scalars.big, 2n ** 70n);
  assert.ok("undef" in scalars && scalars.undef === undefined);
  assert.equal(scalars.text, "žluťoučký kůň 🐎");
  assert.deepEqual(got[2], items[2]);
  assert.deepEqual(got[3], new Float64Array([1.5, -2.25]));
  const loop = got[4] as Record<string, unknown>;
  assert.equal(loop.self, loop, "a cycle stays a cycle");
  assert.deepEqual(got[5], /ab+c/gi);
  assert.ok(got[6] instanceof Error);
  assert.equal((got[6] as Error).name, "RangeError");
  assert.equal((got[6] as Error).message, "bad range");
  assert.equal(p.exitCode, 0);
});

test("queues: getNowait takes an item whose writer died after publishing it and before counting it", {
  timeout: 5_000,
}, () => {
  const q = new Queue<string>();
  q.putNowait("published");
  // The state a writer killed between its two stores leaves (ring.ts, #sendLocked: the chunk's tail store, then
  // SENT): built here, since no kill lands reliably between two adjacent statements.
  const ring = (q[reduce]().state as { ring: SharedArrayBuffer }).ring;
  Atomics.sub(new Int32Array(ring, 0, CELLS), SENT, 1);
  assert.equal(q.getNowait(), "published", "a published item is seen, counted or not");
  assert.throws(() => q.getNowait(), Empty);
  q.putNowait("next");
  assert.equal(q.getNowait(), "next");
});

test("queues: putNowait/getNowait throw Full/Empty; qsize, empty, full", { timeout: 5_000 }, () => {
  const q = new Queue<number>(2);
  assert.equal(q.empty(), true);
  assert.throws(() => q.getNowait(), Empty);
  q.putNowait(1);
  q.putNowait(2);
  assert.equal(q.qsize(), 2);
  assert.equal(q.full(), true);
  assert.throws(() => q.putNowait(3), Full);
  assert.equal(q.getNowait(), 1);
  assert.equal(q.full(), false);
  assert.equal(q.getNowait(), 2);
  assert.equal(q.empty(), true);
  const unbounded = new Queue<number>();
  assert.equal(unbounded.full(), false);
});

test(
  "queues: timed put and get reject with Full and Empty after the timeout, not before",
  { timeout: 5_000 },
  async () => {
    const q = new Queue<string>(1);
    let started = performance.now();
    await assert.rejects(q.get({ timeout: 100 }), Empty);
    let waited = performance.now() - started;
    assert.ok(waited >= 95 && waited < 1_000, `get waited ${waited} ms`);
    await assert.rejects(q.get({ block: false }), Empty);
    await q.put("x");
    started = performance.now();
    await assert.rejects(q.put("y", { timeout: 100 }), Full);
    waited = performance.now() - started;
    assert.ok(waited >= 95 && waited < 1_000, `put waited ${waited} ms`);
    await assert.rejects(q.put("y", { block: false }), Full);
    assert.equal(await q.get({ timeout: 1_000 }), "x", "the item that timed out was not added");
    assert.equal(q.qsize(), 0);
  },
);

test("queues: a put waiting for room goes through once a get makes room", { timeout: 5_000 }, async () => {
  const q = new Queue<number>(1);
  await q.put(1);
  const putting = q.put(2, { timeout: 2_000 });
  await sleep(20);
  assert.equal(await q.get({ timeout: 1_000 }), 1);
  await putting;
  assert.equal(await q.get({ timeout: 1_000 }), 2);
});

test("queues: an AbortSignal stops a waiting get", { timeout: 5_000 }, async () => {
  const q = new Queue();
  const controller = new AbortController();
  const getting = q.get({ signal: controller.signal });
  setTimeout(() => controller.abort(new Error("stop waiting")), 20);
  await assert.rejects(getting, /stop waiting/);
  await q.put(1);
  assert.equal(await q.get({ timeout: 1_000 }), 1, "the aborted get took nothing");
});

test("queues: NaN or negative timeouts throw RangeError", { timeout: 5_000 }, () => {
  const q = new Queue();
  assert.throws(() => q.get({ timeout: NaN }), RangeError);
  assert.throws(() => q.get({ timeout: -1 }), RangeError);
  assert.throws(() => q.put(1, { timeout: -5 }), /timeout must be a number of milliseconds >= 0/);
  assert.throws(() => new Queue(1.5), TypeError);
});

test("queues: getSync and putSync in a worker; on the main thread they throw", { timeout: 20_000 }, async () => {
  const q = new Queue(1);
  const report = new Queue();
  const p = start("probeSync", q, report);
  assert.deepEqual(await report.get({ timeout: 10_000 }), ["Empty", "Full", "a"]);
  await p.join(10_000);
  assert.throws(() => q.getSync({ timeout: 10 }), /main thread must not block/);
});

test("queues: a queue passed to two children carries items between them while the main thread is busy", {
  timeout: 30_000,
}, async () => {
  // Bounded, so that the two children must keep taking turns for the whole run.
  const q = new Queue<number>(10);
  const cell = new Int32Array(new SharedArrayBuffer(12)).fill(-1);
  const count = 20_000;
  const consumer = start("expectSequence", q, count, cell);
  const producer = start("putNumbers", q, count, cell);
  for (let waited = 0; (cell[1] === -1 || cell[2] === -1) && waited < 10_000; waited += 5) await sleep(5);
  // Block the main thread: nothing may depend on it while the children talk.
  const end = performance.now() + 15_000;
  while (Atomics.load(cell, 0) === -1 && performance.now() < end);
  assert.equal(Atomics.load(cell, 0), count, "every item arrived, in order");
  await Promise.all([consumer.join(10_000), producer.join(10_000)]);
  assert.deepEqual([consumer.exitCode, producer.exitCode], [0, 0]);
});

test("queues: once every item that two producers put is taken, the queue counts none, and a bounded one has its room", {
  timeout: 60_000,
}, async () => {
  // A consumer that took an item before its producer had counted it, and then found the queue empty, used to
  // count it away as if a dead producer had left the count low: the producer's count then left one item too
  // many for good (seen in 4 of 5 rounds).
  for (const maxsize of [0, 0, 0, 2]) {
    const q = new Queue<number>(maxsize);
    const producers = [0, 1].map(() => start("putNumbers", q, 10_000, new Int32Array(new SharedArrayBuffer(12))));
    for (let k = 0; k < 20_000; k++) await q.get({ timeout: 10_000 });
    await Promise.all(producers.map((p) => p.join(10_000)));
    assert.deepEqual(producers.map((p) => p.exitCode), [0, 0]);
    assert.equal(q.qsize(), 0, `maxsize ${maxsize}: nothing is left to count`);
    assert.equal(q.empty(), true);
    if (maxsize) {
      q.putNowait(1);
      q.putNowait(2);
      assert.equal(q.full(), true);
    }
  }
});

test("queues: several producers and consumers lose nothing, duplicate nothing, keep each producer's order", {
  timeout: 60_000,
}, async () => {
  const q = new Queue<{ from: string; i: number } | null>(50);
  const results = new Queue<{ from: string; i: number }[]>();
  const consumers = [start("consume", q, results), start("consume", q, results)];
  const producers = ["a", "b", "c"].map((from) => start("produce", q, from, 700));
  for (let i = 0; i < 200; i++) await q.put({ from: "main", i });
  await Promise.all(producers.map((p) => p.join(30_000)));
  for (const _ of consumers) await q.put(null, { timeout: 10_000 });
  const lists = [await results.get({ timeout: 20_000 }), await results.get({ timeout: 20_000 })];
  await Promise.all(consumers.map((p) => p.join(10_000)));
  const seen = new Set<string>();
  for (const list of lists) {
    const last = new Map<string, number>();
    for (const { from, i } of list) {
      const key = `${from}${i}`;
      assert.ok(!seen.has(key), `${key} arrived twice`);
      seen.add(key);
      assert.ok((last.get(from) ?? -1) < i, `${from}'s items arrived out of order`);
      last.set(from, i);
    }
  }
  assert.equal(seen.size, 3 * 700 + 200, "nothing lost");
});

test(
  "queues: an item bigger than the buffer is streamed, between items on either side",
  { timeout: 20_000 },
  async () => {
    const q = new Queue();
    const huge = new Uint8Array(HUGE).map((_, i) => i % 251);
    const p = start("putAll", q, ["before", huge, "after"]);
    assert.equal(await q.get({ timeout: 10_000 }), "before");
    const got = (await q.get({ timeout: 10_000 })) as Uint8Array;
    assert.equal(got.length, HUGE);
    assert.ok(got.every((byte, i) => byte === i % 251), "every byte arrived");
    assert.equal(await q.get({ timeout: 10_000 }), "after");
    await p.join(10_000);
  },
);

test(
  "queues: a child finishes sending what it put before it ends, unless cancelJoinThread",
  { timeout: 30_000 },
  async () => {
    const q = new Queue<Uint8Array>();
    const p = start("putAndLeave", q, 700_000, false);
    await sleep(300);
    assert.equal(p.isAlive(), true, "the child waits until its second item fits");
    assert.equal((await q.get({ timeout: 10_000 }))[0], 2);
    assert.equal((await q.get({ timeout: 10_000 }))[0], 3);
    await p.join(10_000);
    assert.equal(p.exitCode, 0);

    const other = new Queue<Uint8Array>();
    const leaver = start("putAndLeave", other, 700_000, true);
    await leaver.join(10_000);
    assert.equal(leaver.exitCode, 0);
    assert.equal((await other.get({ timeout: 1_000 }))[0], 2);
    await assert.rejects(other.get({ timeout: 100 }), Empty, "the item still waiting was dropped");
  },
);

test(
  "queues: close stops put and get in this process, ends for-await and rejects a waiting get",
  { timeout: 5_000 },
  async () => {
    const q = new Queue<number>();
    assert.throws(() => q.joinThread(), /after close/);
    const waiting = q.get();
    const collected: number[] = [];
    const loop = (async () => {
      for await (const item of q) collected.push(item);
    })();
    await sleep(10);
    q.close();
    await assert.rejects(waiting, /closed/);
    await loop;
    assert.throws(() => q.put(1), /put: this Queue is closed/);
    assert.throws(() => q.getNowait(), /closed/);
    await q.joinThread();

    const iterated = new Queue<number>();
    for (const i of [1, 2, 3]) iterated.put(i);
    for await (const item of iterated) {
      collected.push(item);
      if (item === 3) break;
    }
    assert.deepEqual(collected, [1, 2, 3]);
  },
);

test("queues: an item that cannot be copied fails at put, naming what", { timeout: 5_000 }, () => {
  const q = new Queue();
  assert.throws(() => q.put({ job: { run: Math.max } }), /Queue\.put\(obj\)\.job\.run: max is a native or bound/);
  assert.throws(() => q.putNowait([new (class Secret {})()]), /Queue\.putNowait\(obj\)\[0\] is an instance of Secret/);
  // A Queue, a Lock or a SharedArrayBuffer inside an item travels (tests/transfer.test.ts); what holds one of
  // them next to something that cannot travel fails whole, before anything is parked or put.
  assert.throws(
    () => q.putNowait({ inner: new Queue(), lock: new Lock(), cells: new Int32Array(8), bad: new (class Secret {})() }),
    /Queue\.putNowait\(obj\)\.bad is an instance of Secret/,
  );
  assert.equal(q.qsize(), 0, "nothing was put");
});

test("queues: JoinableQueue.join resolves once every item is marked done; too many taskDone throws", {
  timeout: 20_000,
}, async () => {
  const q = new JoinableQueue<number>();
  const done = new Queue<number>();
  for (let i = 0; i < 5; i++) await q.put(i);
  let joined = false;
  const joining = q.join().then(() => (joined = true));
  const p = start("work", q, 5, done);
  const finished = [];
  for (let i = 0; i < 5; i++) finished.push(await done.get({ timeout: 10_000 }));
  await Promise.race([joining, sleep(5_000)]);
  assert.equal(joined, true);
  assert.deepEqual(finished, [0, 1, 2, 3, 4]);
  await p.join(10_000);
  assert.throws(() => q.taskDone(), /taskDone\(\) called too many times/);
  await q.put(9);
  assert.equal(await q.get({ timeout: 1_000 }), 9);
  q.taskDone();
  await Promise.race([q.join(), sleep(1_000).then(() => assert.fail("join did not resolve"))]);
});

test("queues: SimpleQueue between main and a child", { timeout: 20_000 }, async () => {
  const q = new SimpleQueue<string>();
  const back = new SimpleQueue<string>();
  assert.equal(q.empty(), true);
  const p = start("simple", q, back);
  assert.equal(await back.get(), "from child");
  await q.put("ping");
  assert.equal(await back.get(), "echo ping");
  await p.join(10_000);
  assert.equal(p.exitCode, 0);
});

test("queues: a producer terminated in the middle of a put leaves the queue usable, without its half item", {
  timeout: 30_000,
}, async () => {
  const q = new Queue();
  const started = new Queue();
  const p = start("putHuge", q, started, HUGE);
  assert.equal(await started.get({ timeout: 10_000 }), "putting");
  await sleep(300); // the ring is full: the child holds the write lock, mid-item
  p.terminate();
  await p.join(10_000);
  await q.put("after", { timeout: 5_000 });
  assert.equal(await q.get({ timeout: 5_000 }), "after", "the half item is dropped, the next item arrives");
  const echo = new Queue();
  const child = start("echoSync", q, echo);
  await q.put("through a child");
  assert.equal(await echo.get({ timeout: 10_000 }), "through a child");
  await q.put(null);
  await child.join(10_000);
});

test(
  "queues: a producer killed at any moment leaves a gapless prefix, and the queue usable",
  { timeout: 30_000 },
  async () => {
    const q = new Queue<number>(100);
    const p = start("putForever", q);
    const got: number[] = [];
    while (got.length < 500) got.push(await q.get({ timeout: 10_000 }));
    p.kill();
    await p.join(10_000);
    for (;;) {
      try {
        got.push(await q.get({ timeout: 200 }));
      } catch (error) {
        if (error instanceof Empty) break;
        throw error;
      }
    }
    assert.deepEqual(got, got.map((_, i) => i), "items 0 … n-1, none missing or repeated");
    await q.put(-1, { timeout: 2_000 });
    assert.equal(await q.get({ timeout: 2_000 }), -1);
  },
);

test("queues: a consumer killed mid-get loses at most the one item it was taking", { timeout: 30_000 }, async () => {
  const q = new Queue<number>();
  const taken = new Queue<number>();
  const consumer = start("takeForever", q, taken);
  const total = 3_000;
  const putting = (async () => {
    for (let i = 0; i < total; i++) await q.put(i);
  })();
  const reported: number[] = [];
  while (reported.length < 300) reported.push(await taken.get({ timeout: 10_000 }));
  consumer.kill();
  await consumer.join(10_000);
  await putting;
  for (;;) {
    try {
      reported.push(await taken.get({ timeout: 100 }));
    } catch (error) {
      if (error instanceof Empty) break;
      throw error;
    }
  }
  const rest: number[] = [];
  for (;;) {
    try {
      rest.push(await q.get({ timeout: 200 }));
    } catch (error) {
      if (error instanceof Empty) break;
      throw error;
    }
  }
  const all = [...reported, ...rest];
  assert.equal(new Set(all).size, all.length, "no item arrived twice");
  assert.ok(all.length >= total - 1, `only ${all.length} of ${total} items arrived`);
  assert.deepEqual(rest, [...rest].sort((a, b) => a - b), "the rest is still in order");
});

test(
  "queues: without Atomics.waitAsync a waiting get is still woken by a put in a child",
  { timeout: 20_000 },
  async () => {
    await withoutNativeWaitAsync(async () => {
      const q = new Queue();
      const p = start("putAll", q, ["late"]);
      assert.equal(await q.get({ timeout: 10_000 }), "late");
      await p.join(10_000);
    });
  },
);

test("queues: a pending get or poll keeps the program alive until it ends", { timeout: 30_000 }, async () => {
  const result = await runScript(new URL("./fixtures/queue_wait.ts", import.meta.url).pathname);
  assert.equal(result.stderr, "");
  assert.equal(result.stdout, "get true true\npoll false\n");
  assert.equal(result.code, 0);
});

const startTasks = starter("tasks");

test(
  "queues: (func, args) tasks: an exported function travels by reference, a self-contained one as source",
  { timeout: 30_000 },
  async () => {
    // As CPython's mp_workers.py puts (func, args) tuples on a Queue: pickle sends module-level functions by name.
    const { mul, plus } = await import("./fixtures/tasks.ts");
    // An object, not a number: Bun's transpiler inlines a const number into the function's source text.
    const scale = { k: 3 };
    for (const target of ["calculate", "calculateSync"]) {
      const tasks = new Queue();
      const results = new Queue<[string, unknown, boolean]>();
      const p = startTasks(target, tasks, results);
      tasks.put([mul, [6, 7]]);
      tasks.put([plus, [6, 7]]);
      tasks.put([(a: number, b: number) => a - b, [9, 4]]);
      tasks.put([(x: number) => x * scale.k, [1]]);
      tasks.put(null);
      const got = [];
      for (let i = 0; i < 4; i++) got.push(await results.get({ timeout: 20_000 }));
      await p.join(10_000);
      assert.equal(p.exitCode, 0, target);
      assert.deepEqual(got.slice(0, 3), [["mul", 42, true], ["plus", 13, true], ["", 5, false]], target);
      assert.equal(got[3][0], "");
      assert.match(
        String(got[3][1]),
        /^ReferenceError: scale is not defined\. .*sent as source text.*export it/,
        target,
      );
    }
  },
);

test("queues: a function without source text is refused at put, naming it", { timeout: 5_000 }, () => {
  const q = new Queue();
  assert.throws(() => q.put([Math.max, [1]]), {
    name: "TypeError",
    message: /^Queue\.put\(obj\)\[0\]: max is a native or bound function/,
  });
  assert.throws(() => q.putNowait({ f: (() => 1).bind(null) }), /^TypeError: Queue\.putNowait\(obj\)\.f: bound/);
  assert.equal(q.qsize(), 0, "nothing was put");
});

test(
  "queues: a function a child sends to the main process arrives working, as source text",
  { timeout: 20_000 },
  async () => {
    // The main process imported no module for a target, so it finds no export to take by reference.
    const results = new Queue<[(a: number, b: number) => number, (a: number, b: number) => number]>();
    const p = startTasks("sendBack", results);
    const [mul, plus] = await results.get({ timeout: 10_000 });
    await p.join(10_000);
    assert.deepEqual([mul.name, mul(6, 7), plus.name, plus(6, 7)], ["mul", 42, "plus", 13]);
  },
);
