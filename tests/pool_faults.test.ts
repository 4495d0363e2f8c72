/**
 * The pool under faults (issue 11) and the rest of Python's Pool surface
 * (issue 12): a worker's death loses no finished result, big timeouts mean
 * what they say, close() + join() with an unread imap, thrown non-Errors,
 * imap past a failed item, next(timeout), mapAsync's arguments.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { BrokenPoolError, Pool, Process, TimeoutError } from "../mod.ts";
import { adapter } from "../src/adapters/mod.ts";
import { checkNoLeaks } from "./leaks.ts";
import { makePool } from "./fixtures/pool_maker.ts";
import { useMadePool } from "./fixtures/pool_user.ts";

checkNoLeaks();

const module = new URL("./fixtures/pool_faults.ts", import.meta.url);
const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const ones = (n: number) => range(n).map(() => 1);
const counter = (n: number) => new Int32Array(new SharedArrayBuffer(4 * n));

/** `promise`, or a rejection naming `what` if it has not settled within `ms`: a hang fails instead of hanging. */
function bounded<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  const hung = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} hung`)), ms)));
  return Promise.race([promise, hung]).finally(() => clearTimeout(timer));
}

/** Every outcome of an iterator read by hand: values, and thrown values as { thrown }. */
async function drain(results: AsyncIterator<unknown>): Promise<unknown[]> {
  const seen: unknown[] = [];
  for (;;) {
    try {
      const step = await bounded(results.next(), 10_000, "next()");
      if (step.done) return seen;
      seen.push(step.value);
    } catch (error) {
      seen.push({ thrown: error instanceof Error ? `${error.name}: ${error.message}` : error });
    }
  }
}

/** A pool that has measured its tasks as tiny, so that what is submitted next travels to a worker in one batch. */
async function warmPool(processes: number, options: { memoryLimit?: number } = {}): Promise<Pool> {
  const pool = new Pool({ processes, module, ...options });
  await pool.map("inc", range(200), 1);
  return pool;
}

const kinds: [string, string, (i: number) => unknown][] = [
  ["numbers", "counted", (i) => i],
  ["objects", "countedObject", (i) => ({ i })],
  ["strings", "countedText", (i) => `#${i}`],
];
for (const [kind, fn, expect] of kinds) {
  test(
    `pool faults: a task killed for its timeout fails alone; the tasks of its batch deliver (${kind}), none runs twice`,
    { timeout: 30_000 },
    async () => {
      await using pool = await warmPool(1);
      const counts = counter(20);
      const before = range(10).map((i) => pool.applyAsync(fn, [counts, i]));
      // Asleep rather than busy: on Deno terminate() cannot stop a busy thread, which would go on taking a core.
      const hung = pool.applyAsync("sleepy", [60_000, "never"], { timeout: 300 });
      const after = range(10).map((i) => pool.applyAsync(fn, [counts, 10 + i]));
      await assert.rejects(hung.get(10_000), TimeoutError);
      assert.deepEqual(await Promise.all(before.map((r) => r.get(10_000))), range(10).map(expect));
      assert.deepEqual(await Promise.all(after.map((r) => r.get(10_000))), range(10).map((i) => expect(10 + i)));
      assert.deepEqual([...counts], ones(20), "every task ran exactly once");
    },
  );
}

test("pool faults: a task that calls exit() amid 2,000 tiny tasks fails alone; none runs twice", {
  timeout: 30_000,
}, async () => {
  await using pool = await warmPool(2);
  const counts = counter(2_000);
  const first = range(1_000).map((i) => pool.applyAsync("counted", [counts, i]));
  const dying = pool.applyAsync("exitWith", [9]);
  const rest = range(1_000).map((i) => pool.applyAsync("counted", [counts, 1_000 + i]));
  await assert.rejects(dying.get(10_000), { name: "BrokenPoolError", message: /exit code 9 while it ran this task/ });
  assert.deepEqual(await Promise.all([...first, ...rest].map((r) => r.get(10_000))), range(2_000));
  assert.deepEqual([...counts], ones(2_000), "every task ran exactly once");
});

test(
  "pool faults: a task that runs its worker out of memory fails alone; the others of its batch deliver",
  {
    timeout: 30_000,
    // Only Node enforces a worker's heap limit: Bun ignores resourceLimits, Deno's Web Workers have none.
    skip: adapter.runtime !== "node" ? `${adapter.runtime} cannot limit a worker's memory` : false,
  },
  async () => {
    await using pool = await warmPool(1, { memoryLimit: 32 });
    const counts = counter(100);
    const before = range(50).map((i) => pool.applyAsync("counted", [counts, i]));
    const hog = pool.applyAsync("hog", []);
    const after = range(50).map((i) => pool.applyAsync("counted", [counts, 50 + i]));
    await assert.rejects(hog.get(20_000), BrokenPoolError);
    assert.deepEqual(await Promise.all([...before, ...after].map((r) => r.get(20_000))), range(100));
    assert.deepEqual([...counts], ones(100));
  },
);

test("pool faults: a task that finished before its timeout keeps its result while a long task follows it", {
  timeout: 30_000,
}, async () => {
  await using pool = await warmPool(1);
  const counts = counter(1);
  const quick = pool.applyAsync("counted", [counts, 0], { timeout: 200 });
  const long = pool.applyAsync("busy", [600]);
  assert.equal(await quick.get(10_000), 0);
  assert.equal(await long.get(10_000), 600, "its worker was not killed");
  assert.deepEqual([...counts], [1]);
});

/** Timeouts past setTimeout's range (2^31 ms and more), which fire at once when given to it. */
const BIG = [2 ** 31, 2 ** 31 + 1, 2 ** 32, Number.MAX_SAFE_INTEGER];

test(
  "pool faults: timeouts of 2^31 ms and more wait, in get, wait and a task's timeout",
  { timeout: 30_000 },
  async () => {
    await using pool = new Pool({ processes: 2, module });
    for (const big of BIG) {
      const t0 = performance.now();
      const slow = pool.applyAsync("sleepy", [200, "late"]);
      assert.equal(await slow.wait(big), true, `wait(${big}) waited for the task`);
      assert.ok(performance.now() - t0 >= 150, "it waited");
      assert.equal(await pool.applyAsync("sleepy", [200, "got"]).get(big), "got", `get(${big})`);
      assert.equal(await pool.apply("sleepy", [200, "kept"], { timeout: big }), "kept", `{ timeout: ${big} }`);
      assert.deepEqual(await pool.map("sleepy", [200], { timeout: big }), [undefined]);
    }
  },
);

test(
  "pool faults: Process.join with a timeout of 2^31 ms and more waits for the end",
  { timeout: 30_000 },
  async () => {
    for (const big of BIG) {
      const p = new Process({ target: "nap", args: [200], module });
      p.start();
      await p.join(big);
      assert.equal(p.exitCode, 0, `join(${big}) returned only at the end`);
    }
  },
);

test("pool faults: a task that throws a non-Error rejects with the thrown value itself, as await does", {
  timeout: 30_000,
}, async () => {
  await using pool = new Pool({ processes: 2, module });
  const thrown: unknown[] = ["a string", { code: 7, detail: ["x"] }, 42, null, undefined, false, 10n];
  for (const value of thrown) {
    // What JavaScript's own await gives for that throw.
    const local = await Promise.reject(value).catch((e) => ({ e }));
    assert.deepEqual(await pool.apply("throwValue", [value]).catch((e) => ({ e })), local, `throw ${String(value)}`);
    assert.deepEqual(await pool.apply("rejectValue", [value]).catch((e) => ({ e })), local, `reject ${String(value)}`);
  }
  await assert.rejects(pool.map("throwValue", ["in a map"]), (e) => e === "in a map");
  const errorCallback = Promise.withResolvers<unknown>();
  pool.applyAsync("throwValue", [{ why: "callback" }], { errorCallback: errorCallback.resolve });
  assert.deepEqual(await errorCallback.promise, { why: "callback" });
});

test("pool faults: an initializer that throws a string breaks the pool with that string as the cause", {
  timeout: 30_000,
}, async () => {
  await using pool = new Pool({ processes: 1, initializer: "badInit", module });
  const error = await pool.apply("inc", [1]).catch((e) => e);
  assert.ok(error instanceof BrokenPoolError, String(error));
  assert.match(error.message, /initializer failed in SpawnPoolWorker-\d+: no config/);
  assert.equal(error.cause, "no config");
});

test("pool faults: close() then join() resolves with an imap unread; its results wait for the reader", {
  timeout: 30_000,
}, async () => {
  const pool = new Pool({ processes: 2, module });
  // More items than an imap reads ahead of its reader.
  const ordered = pool.imap("inc", range(500));
  const unordered = pool.imapUnordered(
    "inc",
    (async function* () {
      for (const i of range(300)) yield i;
    })(),
    7,
  );
  pool.close();
  await bounded(pool.join(), 15_000, "join()");
  const got: unknown[] = [];
  for await (const y of ordered) got.push(y);
  assert.deepEqual(got, range(500).map((x) => x + 1));
  const loose: number[] = [];
  for await (const y of unordered) loose.push(y as number);
  assert.deepEqual(loose.sort((a, b) => a - b), range(300).map((x) => x + 1));
});

test("pool faults: imap throws at a failed item and the next call goes on, as Python's IMapIterator", {
  timeout: 30_000,
}, async () => {
  await using pool = new Pool({ processes: 2, module });
  const three = { thrown: "TypeError: three is not allowed" };
  const five = { thrown: "five" };
  assert.deepEqual(await drain(pool.imap("oddFailures", range(8))), [0, 1, 2, three, 4, five, 6, 7]);
  // A failed chunk throws once, in the place of its items.
  assert.deepEqual(await drain(pool.imap("oddFailures", range(8), 2)), [0, 1, three, five, 6, 7]);
  const loose = await drain(pool.imapUnordered("oddFailures", range(8)));
  assert.deepEqual(loose.filter((x) => typeof x === "number").sort(), [0, 1, 2, 4, 6, 7]);
  assert.equal(loose.length, 8);
  const thrown = loose.filter((x) => typeof x === "object").map((x) => JSON.stringify(x)).sort();
  assert.deepEqual(thrown, [three, five].map((x) => JSON.stringify(x)).sort());
});

test("pool faults: imap's next(timeout) throws TimeoutError when nothing came in time; the result is kept", {
  timeout: 30_000,
}, async () => {
  await using pool = new Pool({ processes: 2, module });
  const results = pool.imap("sleepItem", [400, 10]);
  const t0 = performance.now();
  const error = await results.next(50).catch((e) => e);
  assert.ok(error instanceof TimeoutError, String(error));
  assert.match(error.message, /Pool\.imap: no result within 50 ms/);
  assert.ok(performance.now() - t0 < 300, "it gave up at its timeout");
  assert.deepEqual(await results.next(5_000), { value: 400, done: false }, "the late result was kept");
  assert.deepEqual(await results.next(2 ** 31), { value: 10, done: false });
  assert.deepEqual(await results.next(0), { value: undefined, done: true });
  assert.throws(() => pool.imap("inc", [1]).next(-1), RangeError);
  const loose = pool.imapUnordered("sleepItem", [300]);
  await assert.rejects(loose.next(20), TimeoutError);
  assert.deepEqual(await loose.next(), { value: 300, done: false });
});

test("pool faults: mapAsync and starmapAsync take (chunksize?, options?) and never ignore an argument", {
  timeout: 30_000,
}, async () => {
  await using pool = new Pool({ processes: 2, module });
  const called = Promise.withResolvers<unknown>();
  const result = pool.mapAsync("inc", [1, 2, 3], undefined, { callback: called.resolve });
  assert.deepEqual(await bounded(called.promise, 10_000, "the callback"), [2, 3, 4]);
  assert.deepEqual(await result.get(5_000), [2, 3, 4]);
  const failed = Promise.withResolvers<unknown>();
  pool.mapAsync("failOnThree", [1, 3], 1, { errorCallback: failed.resolve });
  assert.equal(((await bounded(failed.promise, 10_000, "the errorCallback")) as Error).name, "TypeError");
  const summed = Promise.withResolvers<unknown>();
  pool.starmapAsync("add", [[1, 2], [3, 4]], null, { callback: summed.resolve });
  assert.deepEqual(await bounded(summed.promise, 10_000, "starmapAsync's callback"), [3, 7]);
  assert.deepEqual(await pool.mapAsync("inc", [5], { chunksize: 1 }).get(5_000), [6], "options alone still work");

  const bad = (call: () => unknown, message: RegExp) => assert.throws(call, { name: "TypeError", message });
  bad(() => pool.mapAsync("inc", [1], "2" as never), /chunksize must be a number or an options object, got string/);
  bad(() => pool.mapAsync("inc", [1], { chunksize: 1 }, {}), /options were given twice/);
  bad(() => pool.mapAsync("inc", [1], 2, { chunksize: 3 }), /chunksize was given twice/);
  bad(() => pool.mapAsync("inc", [1], 1, { error_callback: () => {} } as never), /unknown option "error_callback"/);
  bad(() => pool.starmapAsync("add", [[1, 2]], 1, { callback: 5 as never }), /callback must be a function/);
  bad(() => pool.mapAsync("inc", [1], 1, 5 as never), /options must be an object/);
  bad(() => pool.map("inc", [1], { callbak: () => {} } as never), /unknown option "callbak"/);
  bad(() => pool.applyAsync("inc", [1], { callbak: () => {} } as never), /unknown option "callbak"/);
  bad(() => pool.imap("inc", [1], { chunk: 2 } as never), /unknown option "chunk"/);
});

test("pool faults: new Pool() without module finds tasks in the module that made it, then at the call site", {
  timeout: 30_000,
}, async () => {
  const pool = makePool();
  try {
    assert.deepEqual(await bounded(useMadePool(pool), 15_000, "the tasks"), [42, 10, 101]);
  } finally {
    pool.terminate();
    await pool.join();
  }
});

test(
  "pool faults: tasks taken back from a worker that is then killed run once, elsewhere; the pool goes on",
  { timeout: 30_000 },
  async () => {
    await using pool = new Pool({ processes: 2, module });
    // Tiny tasks first, so the pool sends several tasks to each worker at once.
    for (let i = 0; i < 5; i++) await pool.map("inc", range(64), 1);
    const counts = new Int32Array(new SharedArrayBuffer(4 * 7));
    const t0 = performance.now();
    // The hung task's worker is killed at its timeout: the tasks queued behind it were taken by the other worker.
    const hung = pool.applyAsync("hang", [], { timeout: 2_000 });
    const quick = range(7).map((i) => pool.applyAsync("counted", [counts, i]));
    assert.deepEqual(await Promise.all(quick.map((r) => r.get(20_000))), range(7));
    const took = performance.now() - t0;
    assert.ok(took < 1_500, `the quick tasks took ${took} ms: some waited for the hung one`);
    await assert.rejects(hung.get(20_000), TimeoutError);
    assert.equal(await pool.apply("counted", [counts, 0], { timeout: 20_000 }), 0, "the pool still works");
    assert.deepEqual([...counts], [2, 1, 1, 1, 1, 1, 1], "each ran once (task 0 twice: once more just now)");
  },
);
