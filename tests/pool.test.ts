import { test } from "node:test";
import assert from "node:assert/strict";
import { activeChildren, AsyncResult, BrokenPoolError, cpuCount, Pool, TimeoutError } from "../mod.ts";
import { adapter } from "../src/adapters/mod.ts";
import { checkNoLeaks } from "./leaks.ts";

checkNoLeaks();

const module = new URL("./fixtures/pool.ts", import.meta.url);
const range = (n: number) => Array.from({ length: n }, (_, i) => i);
type Who = { name: string; pid: number; served: number };

test("pool: apply, map and starmap return the values, in order", { timeout: 30_000 }, async () => {
  await using pool = new Pool({ processes: 2, module });
  assert.equal(await pool.apply("inc", [41]), 42);
  assert.equal(await pool.apply("add", [2, 3]), 5);
  assert.deepEqual(await pool.map("inc", range(100)), range(100).map((x) => x + 1));
  assert.deepEqual(await pool.map("inc", new Set([1, 2, 3]), 2), [2, 3, 4]);
  assert.deepEqual(await pool.map("inc", []), []);
  assert.deepEqual(await pool.starmap("add", [[1, 2], [3, 4], [5, 6]]), [3, 7, 11]);
  assert.deepEqual(await pool.starmapAsync("add", [[10, 1]], 1).get(5_000), [11]);
  assert.deepEqual(await pool.mapAsync("inc", [0.5, -1]).get(5_000), [1.5, 0]);
  // Objects and numbers travel alike, also in long chunks.
  const objects = range(40).map((i) => ({ i }));
  assert.deepEqual(await pool.starmap("add", range(40).map((i) => [i, 0.25])), range(40).map((i) => i + 0.25));
  assert.deepEqual(await pool.map("sleepItem", [3, 1, 2]), [3, 1, 2], "async tasks are awaited");
  assert.equal(objects.length, 40);
});

test(
  "pool: default size is cpuCount(); workers are Processes named SpawnPoolWorker-N",
  { timeout: 30_000 },
  async () => {
    const before = activeChildren().length;
    await using pool = new Pool({ module });
    const workers = activeChildren().slice(before);
    assert.equal(workers.length, cpuCount());
    for (const worker of workers) {
      assert.match(worker.name, /^SpawnPoolWorker-\d+$/);
      assert.equal(worker.daemon, true);
    }
    const seen = await pool.map("whoami", range(8 * cpuCount()), 1) as Who[];
    for (const who of seen) {
      const worker = workers.find((w) => w.pid === who.pid);
      assert.ok(worker, `task ran in pid ${who.pid}, not a pool worker`);
      assert.equal(who.name, worker.name, "the worker knows its own name");
    }
    assert.match(String(pool), /^<Pool state=RUN pool_size=\d+>$/);
  },
);

test(
  "pool: applyAsync calls callback or errorCallback; AsyncResult ready, successful, wait, get",
  { timeout: 30_000 },
  async () => {
    await using pool = new Pool({ processes: 2, module });
    const called: unknown[] = [];
    const slow = pool.applyAsync("sleepy", [300, "late"], { callback: (value) => called.push(["ok", value]) });
    assert.ok(slow instanceof AsyncResult);
    assert.equal(slow.ready(), false);
    assert.throws(() => slow.successful(), /not ready/);
    assert.equal(await slow.wait(20), false, "wait(timeout) resolves false when time runs out");
    assert.equal(await slow.wait(5_000), true);
    assert.equal(slow.ready(), true);
    assert.equal(slow.successful(), true);
    assert.equal(await slow.get(), "late");
    assert.deepEqual(called.slice(), [["ok", "late"]]);

    const failing = pool.applyAsync("parse", ["x"], {
      callback: () => called.push("wrong"),
      errorCallback: (error) => called.push(["error", (error as Error).name]),
    });
    await failing.wait(5_000);
    assert.equal(failing.successful(), false);
    await assert.rejects(failing.get(), { name: "ParseError" });
    assert.deepEqual(called.at(-1), ["error", "ParseError"]);

    const mapped = pool.mapAsync("inc", [1, 2], { callback: (values) => called.push(values) });
    assert.deepEqual(await mapped.get(5_000), [2, 3]);
    assert.deepEqual(called.at(-1), [2, 3]);
    await assert.rejects(slow.wait(-1), RangeError);
    await assert.rejects(slow.get(Number.NaN), RangeError);
  },
);

test("pool: get(timeout) rejects with our TimeoutError and leaves the task running", { timeout: 30_000 }, async () => {
  await using pool = new Pool({ processes: 1, module });
  const result = pool.applyAsync("sleepy", [400, "done"]);
  const t0 = performance.now();
  const error = await result.get(50).catch((e) => e);
  const waited = performance.now() - t0;
  assert.ok(error instanceof TimeoutError, String(error));
  assert.match(error.message, /no result within 50 ms/);
  assert.ok(waited >= 45 && waited < 1_000, `waited ${waited} ms`);
  assert.equal(await result.get(5_000), "done", "the task went on and finished");
  const aborted = pool.applyAsync("sleepy", [200, "x"]);
  await assert.rejects(aborted.get({ signal: AbortSignal.abort(new Error("stop waiting")) }), /stop waiting/);
});

test(
  "pool: a task's error keeps its class name, message, stack and cause (apply, map, imap)",
  { timeout: 30_000 },
  async () => {
    await using pool = new Pool({ processes: 2, module });
    const error = await pool.apply("parse", ["{"]).catch((e) => e);
    assert.ok(error instanceof Error);
    assert.equal(error.name, "ParseError");
    assert.equal(error.message, 'cannot parse "{"');
    assert.match(String(error.stack), /at parse .*fixtures\/pool\.ts/);
    assert.ok(error.cause instanceof RangeError);
    assert.equal((error.cause as Error).message, "position 3");

    await assert.rejects(pool.map("failOnThree", range(8), 2), { name: "TypeError", message: "three is not allowed" });
    const seen: number[] = [];
    await assert.rejects(async () => {
      for await (const x of pool.imap("failOnThree", range(8))) seen.push(x as number);
    }, { name: "TypeError", message: "three is not allowed" });
    assert.deepEqual(seen, [0, 1, 2], "imap yields the results before the failing item, then throws");
    await assert.rejects(pool.apply("returnsFunction", []), /the task's result is a function/);
    assert.equal(await pool.apply("inc", [1]), 2, "the workers survived");
  },
);

test(
  "pool: bad input gets a clear error at the call, never a hang or a crashed worker",
  { timeout: 30_000 },
  async () => {
    const before = activeChildren().length;
    assert.throws(() => new Pool(0), { name: "RangeError", message: /processes must be an integer >= 1, got 0/ });
    assert.throws(() => new Pool(-1), RangeError);
    assert.throws(() => new Pool(1.5), RangeError);
    assert.throws(() => new Pool({ processes: "2" as unknown as number }), RangeError);
    assert.throws(() => new Pool({ processes: 1, maxtasksperchild: 0 }), /maxtasksperchild/);
    assert.throws(() => new Pool({ processes: 1, initializer: 42 as never }), TypeError);
    assert.throws(
      () => new Pool({ processes: 1, initializer: "setup", initargs: [() => 1], module }),
      /initargs\[0\] is a function/,
    );
    assert.equal(activeChildren().length, before, "no worker was started for a rejected Pool");

    await using pool = new Pool({ processes: 1, module });
    assert.throws(() => pool.apply(42 as never, []), { name: "TypeError", message: /target must be a function/ });
    assert.throws(() => pool.applyAsync("inc", 1 as never), /args must be an array/);
    // A plain function in the args travels, as in a queue item (examples/mp_pool.ts); one without source cannot.
    assert.throws(() => pool.apply("inc", [{ fn: Math.max }]), {
      name: "TypeError",
      message: /^args\[0\]\.fn: max is a native or bound function, which cannot be sent/,
    });
    assert.throws(() => pool.map("inc", 5 as never), { name: "TypeError", message: /must be iterable/ });
    assert.throws(() => pool.imap("inc", null as never), /must be iterable/);
    assert.throws(() => pool.map("inc", [1, 2], 0), {
      name: "RangeError",
      message: /chunksize must be an integer >= 1, got 0/,
    });
    assert.throws(() => pool.imap("inc", [1], { chunksize: -2 }), RangeError);
    assert.throws(() => pool.map("inc", [1, 2, 3, Symbol("s")]), /^TypeError: iterable\[3\] is a symbol/);
    assert.throws(() => pool.starmap("add", [[1, 2], 3] as never), /iterable\[1\] must be an array of arguments/);
    assert.throws(() => pool.apply("inc", [1], { timeout: -5 }), RangeError);
    await assert.rejects(pool.apply("noSuchExport", []), /has no exported function named noSuchExport/);
    assert.equal(await pool.apply("inc", [1]), 2, "the pool still works");
  },
);

test("pool: map's default chunksize is Python's (about four chunks per worker)", { timeout: 30_000 }, async () => {
  await using pool = new Pool({ processes: 2, module });
  // 16 items on 2 workers: chunksize 2, so each pair runs back to back in one worker.
  const seen = await pool.map("whoami", range(16)) as Who[];
  for (let i = 0; i < 16; i += 2) {
    assert.equal(seen[i].pid, seen[i + 1].pid, `items ${i} and ${i + 1} share a chunk`);
    assert.equal(seen[i + 1].served, seen[i].served + 1);
  }
  const fours = await pool.map("whoami", range(12), 4) as Who[];
  for (let i = 0; i < 12; i += 4) {
    assert.deepEqual(fours.slice(i, i + 4).map((w) => w.served - fours[i].served), [0, 1, 2, 3]);
    assert.ok(fours.slice(i, i + 4).every((w) => w.pid === fours[i].pid));
  }
});

test("pool: an exported function inside a task's args or items travels by reference", { timeout: 30_000 }, async () => {
  const { mul, plus } = await import("./fixtures/tasks.ts");
  await using pool = new Pool({ processes: 2, module: new URL("./fixtures/tasks.ts", import.meta.url) });
  assert.deepEqual(await pool.apply("performTask", [[mul, [6, 7]]]), ["mul", 42, true]);
  assert.deepEqual(await pool.map("performTask", [[plus, [1, 2]], [mul, [3, 4]]]), [["plus", 3, true], [
    "mul",
    12,
    true,
  ]]);
  const got = [];
  for await (const x of pool.imap("performTask", [[plus, [5, 5]]])) got.push(x);
  assert.deepEqual(got, [["plus", 10, true]]);
});

test("pool: imap yields in input order, imapUnordered as tasks complete", { timeout: 30_000 }, async () => {
  await using pool = new Pool({ processes: 3, module });
  const ordered: number[] = [];
  for await (const ms of pool.imap("sleepItem", [300, 10, 100])) ordered.push(ms as number);
  assert.deepEqual(ordered, [300, 10, 100]);
  const unordered: number[] = [];
  for await (const ms of pool.imapUnordered("sleepItem", [300, 10, 100])) unordered.push(ms as number);
  assert.deepEqual(unordered, [10, 100, 300]);
  const chunked: number[] = [];
  for await (const x of pool.imap("inc", range(25), 4)) chunked.push(x as number);
  assert.deepEqual(chunked, range(25).map((x) => x + 1));
});

test("pool: imap streams results as they complete, before the input is done", { timeout: 30_000 }, async () => {
  await using pool = new Pool({ processes: 2, module });
  await pool.map("sleepItem", [1, 1], 1); // both workers up: their start-up is not what this measures
  const t0 = performance.now();
  let first = 0;
  const results: number[] = [];
  for await (const ms of pool.imap("sleepItem", [10, 800])) {
    if (!first) first = performance.now() - t0;
    results.push(ms as number);
  }
  assert.deepEqual(results, [10, 800]);
  assert.ok(first < 600, `the first result came after ${first} ms, not before the slow one`);
});

test(
  "pool: imap reads an endless generator lazily and stops reading when the loop ends",
  { timeout: 30_000 },
  async () => {
    await using pool = new Pool({ processes: 2, module });
    let pulled = 0;
    let closed = false;
    function* naturals() {
      try {
        for (let i = 0;; i++) {
          pulled++;
          yield i;
        }
      } finally {
        closed = true;
      }
    }
    const got: number[] = [];
    for await (const x of pool.imap("inc", naturals())) {
      got.push(x as number);
      if (got.length === 10) break;
    }
    assert.deepEqual(got, range(10).map((x) => x + 1));
    assert.ok(closed, "leaving the loop closes the input");
    assert.ok(pulled < 500, `read ${pulled} items of the endless input`);

    async function* ticks() {
      for (let i = 0; i < 6; i++) {
        await new Promise((resolve) => setTimeout(resolve, 5));
        yield i;
      }
    }
    const fromAsync: number[] = [];
    for await (const x of pool.imapUnordered("inc", ticks(), 2)) fromAsync.push(x as number);
    assert.deepEqual(fromAsync.sort(), [1, 2, 3, 4, 5, 6]);

    function* failing() {
      yield 1;
      throw new Error("the input broke");
    }
    const before: number[] = [];
    await assert.rejects(async () => {
      for await (const x of pool.imap("inc", failing())) before.push(x as number);
    }, /the input broke/);
    assert.deepEqual(before, [2]);
  },
);

test("pool: close() lets queued tasks finish, join() waits; use after close throws", { timeout: 30_000 }, async () => {
  const pool = new Pool({ processes: 2, module });
  await assert.rejects(pool.join(), /still running; call close\(\) or terminate\(\) first/);
  const results = [
    pool.applyAsync("sleepy", [200, "a"]),
    pool.applyAsync("sleepy", [200, "b"]),
    pool.applyAsync("inc", [2]),
  ];
  pool.close();
  assert.throws(() => pool.apply("inc", [1]), /not running/);
  assert.throws(() => pool.map("inc", [1]), /not running/);
  assert.throws(() => pool.imap("inc", [1]), /not running/);
  await pool.join();
  assert.deepEqual(results.map((r) => r.ready()), [true, true, true], "join waited for the queued tasks");
  assert.deepEqual(await Promise.all(results.map((r) => r.get())), ["a", "b", 3]);
  assert.match(String(pool), /state=CLOSE/);
  await pool.join();
});

test(
  "pool: terminate() stops the workers and rejects unfinished tasks with BrokenPoolError",
  { timeout: 30_000 },
  async () => {
    const before = activeChildren().length;
    const pool = new Pool({ processes: 2, module });
    assert.equal(await pool.apply("inc", [1]), 2);
    const running = pool.apply("sleepy", [5_000, "never"]);
    const queued = pool.map("inc", range(10));
    const t0 = performance.now();
    pool.terminate();
    await assert.rejects(running, { name: "BrokenPoolError", message: /terminated/ });
    await assert.rejects(queued, BrokenPoolError);
    await pool.join();
    assert.ok(performance.now() - t0 < 3_000, "terminate did not wait for the task");
    assert.equal(activeChildren().length, before);
    assert.throws(() => pool.apply("inc", [1]), /not running/);
  },
);

test("pool: await using terminates the pool as Python's with does", { timeout: 30_000 }, async () => {
  const before = activeChildren().length;
  let pending: Promise<unknown> | undefined;
  {
    await using pool = new Pool({ processes: 2, module });
    assert.equal(activeChildren().length, before + 2);
    pending = pool.apply("sleepy", [5_000, "never"]);
    pending.catch(() => {});
  }
  assert.equal(activeChildren().length, before, "the workers are gone at the end of the block");
  await assert.rejects(pending, BrokenPoolError);
});

test(
  "pool: the initializer runs once in each worker, with initargs, before its first task",
  { timeout: 30_000 },
  async () => {
    await using pool = new Pool({ processes: 2, initializer: "setup", initargs: [{ mode: "fast" }], module });
    const seen = await pool.map("readSetup", range(20), 1);
    for (const [setting, calls] of seen as [unknown, number][]) {
      assert.deepEqual(setting, { mode: "fast" });
      assert.equal(calls, 1);
    }
  },
);

test("pool: a failing initializer breaks the pool with BrokenPoolError instead of respawning forever", {
  timeout: 30_000,
}, async () => {
  await using pool = new Pool({ processes: 2, initializer: "badSetup", module });
  const error = await pool.apply("inc", [1]).catch((e) => e);
  assert.ok(error instanceof BrokenPoolError, String(error));
  assert.match(error.message, /initializer failed in SpawnPoolWorker-\d+: bad configuration/);
  assert.equal((error.cause as Error).name, "SyntaxError");
  assert.throws(() => pool.apply("inc", [1]), BrokenPoolError);
});

test("pool: maxtasksperchild replaces a worker after that many tasks", { timeout: 30_000 }, async () => {
  await using pool = new Pool({ processes: 1, maxtasksperchild: 2, module });
  const serial: Who[] = [];
  for (let i = 0; i < 5; i++) serial.push(await pool.apply("whoami", []) as Who);
  assert.deepEqual(serial.map((w) => w.served), [1, 2, 1, 2, 1]);
  assert.equal(new Set(serial.map((w) => w.pid)).size, 3);
  const flood = await Promise.all(range(6).map(() => pool.apply("whoami", []))) as Who[];
  assert.deepEqual(flood.map((w) => w.served), [2, 1, 2, 1, 2, 1], "the third worker finishes its second task first");
});

test("pool: a worker that calls exit mid-task rejects it with BrokenPoolError, is replaced, the pool goes on", {
  timeout: 30_000,
}, async () => {
  await using pool = new Pool({ processes: 2, module });
  const before = activeChildren().length;
  const error = await pool.apply("exitWith", [3]).catch((e) => e);
  assert.ok(error instanceof BrokenPoolError, String(error));
  assert.match(error.message, /SpawnPoolWorker-\d+ \(pid \d+\) ended with exit code 3 while it ran this task/);
  assert.deepEqual(await pool.map("inc", range(10), 1), range(10).map((x) => x + 1));
  assert.equal(activeChildren().length, before, "the dead worker was replaced");
});

test("pool: a worker that throws outside a task breaks only that task (exit code 1)", { timeout: 30_000 }, async () => {
  await using pool = new Pool({ processes: 1, module });
  await assert.rejects(pool.apply("throwOutside", []), {
    name: "BrokenPoolError",
    message: /ended with exit code 1 while it ran this task/,
  });
  assert.equal(await pool.apply("inc", [5]), 6);
});

test(
  "pool: tasks queued behind a dying worker run elsewhere; none is lost or run twice",
  { timeout: 30_000 },
  async () => {
    await using pool = new Pool({ processes: 2, module });
    await pool.map("inc", range(4), 1);
    const tasks = range(12).map((i) => pool.applyAsync("sleepy", [20, i]));
    const dying = pool.applyAsync("exitWith", [7]);
    const more = range(12).map((i) => pool.applyAsync("sleepy", [20, 100 + i]));
    await assert.rejects(dying.get(10_000), BrokenPoolError);
    assert.deepEqual(await Promise.all(tasks.map((t) => t.get(10_000))), range(12));
    assert.deepEqual(await Promise.all(more.map((t) => t.get(10_000))), range(12).map((i) => 100 + i));
  },
);

test(
  "pool: a per-task timeout rejects with TimeoutError, kills the hung worker, the pool goes on",
  { timeout: 30_000 },
  async () => {
    await using pool = new Pool({ processes: 1, module });
    assert.equal(await pool.apply("inc", [0]), 1);
    const t0 = performance.now();
    const error = await pool.apply("hang", [], { timeout: 200 }).catch((e) => e);
    const took = performance.now() - t0;
    assert.ok(error instanceof TimeoutError, String(error));
    assert.match(error.message, /did not finish within 200 ms/);
    assert.ok(took >= 190 && took < 2_000, `took ${took} ms`);
    assert.equal(await pool.apply("inc", [1], { timeout: 5_000 }), 2, "a fresh worker serves");
    await assert.rejects(pool.map("hang", [1, 2], { timeout: 100 }), TimeoutError);
    assert.deepEqual(await pool.map("inc", [1, 2]), [2, 3]);
  },
);

test(
  "pool: an abort signal cancels a task; one not yet started is withdrawn without a kill",
  { timeout: 30_000 },
  async () => {
    await using pool = new Pool({ processes: 1, module });
    const before = activeChildren()[0]?.pid;
    const blocker = pool.apply("sleepy", [300, "first"]);
    const controller = new AbortController();
    const queued = pool.apply("inc", [1], { signal: controller.signal });
    controller.abort(new Error("no longer needed"));
    await assert.rejects(queued, /no longer needed/);
    assert.equal(await blocker, "first");
    assert.equal(activeChildren().length, 1);
    assert.equal(activeChildren()[0].pid, before, "the worker was not replaced");

    const running = new AbortController();
    const hung = pool.apply("hang", [], { signal: running.signal });
    setTimeout(() => running.abort(new Error("cancelled")), 100);
    await assert.rejects(hung, /cancelled/);
    assert.equal(await pool.apply("inc", [2]), 3);
    await assert.rejects(pool.apply("inc", [0], { signal: AbortSignal.abort(new Error("early")) }), /early/);
  },
);

test("pool: a non-exported self-contained function is sent as source", { timeout: 30_000 }, async () => {
  await using pool = new Pool({ processes: 1, module });
  const triple = (x: number) => x * 3;
  assert.deepEqual(await pool.map(triple, [1, 2, 3]), [3, 6, 9]);
  const offset = 10;
  await assert.rejects(pool.apply((x: number) => x + offset, [1]), { name: "ReferenceError", message: /export it/ });
});

test(
  "pool: a chunk's results keep their values when they turn from numbers to other values or promises mid-chunk",
  { timeout: 30_000 },
  async () => {
    await using pool = new Pool({ processes: 1, module });
    // Numbers (-0 and NaN too) until item 20 of a 40-item chunk, then strings, objects, undefined.
    const mixed = (
      x: number,
    ) => (x < 18 ? x - 1 : x === 18 ? -0 : x === 19 ? NaN : x % 3 ? String(x) : x % 2 ? { x } : undefined);
    const items = Array.from({ length: 40 }, (_, i) => i);
    assert.deepEqual(await pool.map(mixed, items, 40), items.map(mixed));
    assert.ok(Object.is((await pool.map(mixed, items, 40))[18], -0), "-0 stays -0");
    // Numbers, then promises: the rest of the chunk is awaited item by item, the numbers before it kept.
    const later = (x: number) => (x < 25 ? x * 2 : Promise.resolve(x * 3));
    assert.deepEqual(await pool.map(later, items, 40), items.map((x) => (x < 25 ? x * 2 : x * 3)));
    // All numbers, and all numbers after a short chunk's plain array: both travel as they are.
    assert.deepEqual(await pool.map((x: number) => x / 4, items, 40), items.map((x) => x / 4));
    assert.deepEqual(await pool.map((x: number) => x / 4, items, 5), items.map((x) => x / 4));
  },
);

test("pool: tasks queued behind a long one at a worker run on a worker that ran out of tasks", {
  timeout: 30_000,
}, async () => {
  await using pool = new Pool({ processes: 2, module });
  // Tiny tasks first, so the pool sends several tasks to each worker at once.
  for (let i = 0; i < 5; i++) await pool.map("inc", range(64), 1);
  const t0 = performance.now();
  const long = pool.applyAsync("busy", [3_000]);
  const quick = range(7).map(() => pool.applyAsync("whoami", []));
  const seen = await Promise.all(quick.map((r) => r.get(20_000))) as Who[];
  const took = performance.now() - t0;
  assert.equal(long.ready(), false, "the long task is still running");
  assert.ok(took < 2_000, `the quick tasks took ${took} ms: some waited for the long one`);
  assert.equal(seen.length, 7);
  assert.equal(await long.get(20_000), 3_000);
  // A map's chunks of numbers too: they are sent again, to the other worker, from the pool's own copy.
  const t1 = performance.now();
  const longer = pool.applyAsync("busy", [3_000]);
  assert.deepEqual(await pool.map("inc", range(1_000)), range(1_000).map((x) => x + 1));
  const mapped = performance.now() - t1;
  assert.equal(longer.ready(), false, "the long task is still running");
  assert.ok(mapped < 2_000, `the map took ${mapped} ms: some of its chunks waited for the long task`);
  assert.equal(await longer.get(20_000), 3_000);
});

test("pool: 2,000 tiny tasks in flight finish quickly", { timeout: 30_000 }, async () => {
  await using pool = new Pool({ processes: 2, module });
  await pool.map("inc", range(8), 1);
  const t0 = performance.now();
  const results = range(2_000).map((i) => pool.applyAsync("inc", [i]));
  let sum = 0;
  for (const r of results) sum += await r.get() as number;
  const took = performance.now() - t0;
  assert.equal(sum, 2_000 * 2_001 / 2);
  assert.ok(took < 2_000, `took ${took} ms`);
});

test(
  "pool: a worker over its memoryLimit rejects its task with BrokenPoolError, is replaced, the pool goes on",
  {
    timeout: 30_000,
    // Only Node enforces a worker's heap limit: Bun ignores resourceLimits, Deno's Web Workers have none.
    skip: adapter.runtime !== "node" ? `${adapter.runtime} cannot limit a worker's memory` : false,
  },
  async () => {
    assert.throws(() => new Pool({ processes: 1, module, memoryLimit: -1 }), RangeError);
    await using pool = new Pool({ processes: 1, module, memoryLimit: 32 });
    await assert.rejects(pool.apply("hog", []), {
      name: "BrokenPoolError",
      message: /SpawnPoolWorker-\d+ \(pid \d+\) ended with exit code 1 while it ran this task/,
    });
    assert.equal(await pool.apply("inc", [41]), 42);
  },
);
