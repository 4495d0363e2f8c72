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

checkNoLeaks();

const module = new URL("./fixtures/pool_faults.ts", import.meta.url);
const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const ones = (n: number) => range(n).map(() => 1);
const counter = (n: number) => new Int32Array(new SharedArrayBuffer(4 * n));

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
      const hung = pool.applyAsync("hang", [], { timeout: 300 });
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

test("pool faults: timeouts of 2^31 ms and more wait, in get, wait and a task's timeout", { timeout: 30_000 }, async () => {
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
});

test("pool faults: Process.join with a timeout of 2^31 ms and more waits for the end", { timeout: 30_000 }, async () => {
  for (const big of BIG) {
    const p = new Process({ target: "nap", args: [200], module });
    p.start();
    await p.join(big);
    assert.equal(p.exitCode, 0, `join(${big}) returned only at the end`);
  }
});

test("pool faults: a task that throws a non-Error rejects with the thrown value itself, as await does", {
  timeout: 30_000,
}, async () => {
  await using pool = new Pool({ processes: 2, module });
  const thrown: unknown[] = ["a string", { code: 7, detail: ["x"] }, 42, null, undefined, false, 10n];
  for (const value of thrown) {
    const local = await (async () => {
      throw value;
    })().catch((e) => ({ e }));
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
