import { test } from "node:test";
import assert from "node:assert/strict";
import { activeChildren, cpuCount, currentProcess, parentProcess, Process, Queue, SharedMemory } from "../mod.ts";
import { Counter, makeHidden, store } from "./fixtures/process.ts";
import { adapter } from "../src/adapters/mod.ts";
import { checkNoLeaks } from "./leaks.ts";
import { runScript } from "./scripts.ts";

checkNoLeaks();

const module = new URL("./fixtures/process.ts", import.meta.url);
const cells = (n = 1) => new Int32Array(new SharedArrayBuffer(4 * n));

test("process: target runs in the child with its args, exit code 0", { timeout: 20_000 }, async () => {
  const cell = cells();
  const p = new Process({ target: store, args: [cell, 42], module });
  assert.equal(p.exitCode, null);
  assert.equal(p.isAlive(), false);
  p.start();
  assert.equal(p.isAlive(), true);
  assert.equal(typeof p.pid, "number");
  await p.join(10_000);
  assert.equal(cell[0], 42);
  assert.equal(p.exitCode, 0);
  assert.equal(p.isAlive(), false);
});

test("process: a target named by string, with the module given as a string", { timeout: 20_000 }, async () => {
  const cell = cells();
  const p = new Process({ target: "store", args: [cell, 7], module: module.href });
  p.start();
  await p.join(10_000);
  assert.equal([p.exitCode, cell[0]].join(), "0,7");
});

test(
  "process: names Process-N, pids unique, parentProcess and currentProcess in the child",
  { timeout: 20_000 },
  async () => {
    const [ca, cb] = [cells(4), cells(4)];
    const pa = new Process({ target: "identify", args: [ca], module });
    const pb = new Process({ target: "identify", args: [cb], module, name: "Process-custom" });
    const pc = new Process({ target: "identify", args: [cells(4)], module });
    const n = Number(pa.name.match(/^Process-(\d+)$/)?.[1]);
    assert.ok(n >= 1, pa.name);
    assert.equal(pb.name, "Process-custom");
    assert.equal(pc.name, `Process-${n + 2}`, "each new Process takes the next number");
    pa.start();
    pb.start();
    await Promise.all([pa.join(10_000), pb.join(10_000)]);
    assert.notEqual(pa.pid, pb.pid);
    assert.equal(ca[0], pa.pid, "the child sees its own pid");
    assert.equal(cb[0], pb.pid);
    assert.equal(ca[1], currentProcess().pid, "the child's parent pid is ours");
    assert.equal(cb[2], 1, "the child sees its own custom name");
    assert.equal(ca[3], 1, "the child's parent is MainProcess");
  },
);

test("process: the main process", { timeout: 5_000 }, () => {
  const main = currentProcess();
  assert.equal(main.name, "MainProcess");
  assert.equal(typeof main.pid, "number");
  assert.equal(main.isAlive(), true);
  assert.equal(parentProcess(), null);
  assert.throws(() => main.start(), /current process/);
  assert.ok(cpuCount() >= 1);
});

test(
  "process: an uncaught error gives exit code 1, also after an await and from a stray timer",
  { timeout: 20_000 },
  async () => {
    const ps = ["fail", "failLater", "strayError"].map((target) => new Process({ target, module }));
    for (const p of ps) p.start();
    await Promise.all(ps.map((p) => p.join(10_000)));
    assert.deepEqual(ps.map((p) => p.exitCode), [1, 1, 1]);
  },
);

test("process: exit(n) sets exitCode n", { timeout: 20_000 }, async () => {
  const ps = [0, 3, 255].map((code) => new Process({ target: "exitWith", args: [code], module }));
  for (const p of ps) p.start();
  await Promise.all(ps.map((p) => p.join(10_000)));
  assert.deepEqual(ps.map((p) => p.exitCode), [0, 3, 255]);
});

test("process: terminate() gives -15 and kill() gives -9; both stop a busy child", { timeout: 20_000 }, async () => {
  const [a, b] = [cells(), cells()];
  const pt = new Process({ target: "forever", args: [a], module });
  const pk = new Process({ target: "forever", args: [b], module });
  pt.start();
  pk.start();
  const started = performance.now();
  while ((a[0] === 0 || b[0] === 0) && performance.now() - started < 10_000) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  assert.ok(a[0] > 0 && b[0] > 0, "both children were running");
  pt.terminate();
  pk.kill();
  await Promise.all([pt.join(10_000), pk.join(10_000)]);
  assert.equal(pt.exitCode, -15);
  assert.equal(pk.exitCode, -9);
  const beats = a[0];
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(a[0], beats, "a terminated child runs no more");
});

test("process: join(timeout) resolves on timeout while the child runs on", { timeout: 20_000 }, async () => {
  const p = new Process({ target: "forever", args: [cells()], module });
  p.start();
  const t = performance.now();
  await p.join(100);
  const waited = performance.now() - t;
  assert.ok(waited >= 90 && waited < 5_000, `join(100) waited ${waited} ms`);
  assert.equal(p.isAlive(), true);
  assert.equal(p.exitCode, null);
  p.terminate();
  await p.join({ timeout: 10_000 });
  assert.equal(p.isAlive(), false);
});

test("process: join with an AbortSignal rejects with its reason", { timeout: 20_000 }, async () => {
  const p = new Process({ target: "forever", args: [cells()], module });
  p.start();
  await assert.rejects(p.join({ signal: AbortSignal.timeout(50) }), { name: "TimeoutError" });
  p.kill();
  await p.join(10_000);
});

test("process: misuse throws clear errors", { timeout: 20_000 }, async () => {
  const p = new Process({ target: store, args: [cells(), 1], module });
  await assert.rejects(p.join(), /can only join a started process/);
  p.start();
  assert.throws(() => p.start(), /cannot start a process twice/);
  assert.throws(() => p.close(), /while it is running/);
  await assert.rejects(p.join(Number.NaN), RangeError);
  await assert.rejects(p.join(-1), RangeError);
  await p.join(10_000);
  p.close();
  assert.throws(() => p.exitCode, /closed/);
  assert.throws(() => p.start(), /closed/);
  assert.throws(() => new Process({ target: 42 as never }), TypeError);
  assert.throws(() => new Process({ target: store, args: "nope" as never }), /args must be an array/);
  assert.throws(() => new Process({ target: Math.max }), /native or bound/);
});

test("process: an argument that cannot be sent fails at start(), naming it", { timeout: 10_000 }, () => {
  class Secret {
    #key = 1;
    get key() {
      return this.#key;
    }
  }
  const withFn = new Process({ target: store, args: [cells(), { nested: [1, Math.max.bind(null)] }], module });
  assert.throws(() => withFn.start(), {
    name: "TypeError",
    message: /^args\[1\]\.nested\[1\]: bound max is a native or bound function/,
  });
  const withClass = new Process({ target: store, args: [new Secret()], module });
  assert.throws(() => withClass.start(), { name: "TypeError", message: /^args\[0\] is an instance of Secret/ });
  assert.equal(withFn.isAlive(), false);
  assert.equal(activeChildren().length, 0);
});

test("process: a non-exported self-contained function is sent as source", { timeout: 20_000 }, async () => {
  const cell = cells();
  const p = new Process({
    target: (c: Int32Array, n: number) => Atomics.store(c, 0, n * 3),
    args: [cell, 5],
    module,
  });
  p.start();
  await p.join(10_000);
  assert.equal([p.exitCode, cell[0]].join(), "0,15");
});

test(
  "process: a source target that uses an outer variable fails with a hint to export it",
  { timeout: 20_000 },
  async () => {
    const outer = 5;
    const script = await runScript("tests/fixtures/closure.ts");
    assert.equal(script.code, 0, script.stderr);
    assert.match(
      script.stderr,
      /Process Process-1:\nReferenceError: \w+ is not defined\. .*sent as source text.*export it/,
    );
    assert.match(script.stdout, /exitCode 1/);
    assert.equal(outer, 5);
  },
);

test("process: a subclass overriding run() gets its fields in the child", { timeout: 20_000 }, async () => {
  const cell = cells(2);
  const p = new Counter(cell, 1000);
  assert.equal(p.name, "counter");
  p.start();
  await p.join(10_000);
  assert.equal(p.exitCode, 0);
  assert.equal(cell[0], 1000);
  assert.equal(cell[1], 1, "currentProcess() in the child is the Counter instance");
});

test("process: a subclass that is not exported fails with exit code 1", { timeout: 20_000 }, async () => {
  const p = makeHidden();
  p.start();
  await p.join(10_000);
  assert.equal(p.exitCode, 1);
});

test("process: a child starts a grandchild named Process-N:1", { timeout: 30_000 }, async () => {
  const cell = cells(4);
  const p = new Process({ target: "spawnGrandchild", args: [cell], module });
  p.start();
  await p.join(20_000);
  assert.equal(p.exitCode, 0);
  assert.equal(cell[3], 0, "the grandchild ended with 0");
  assert.equal(cell[1], p.pid, "the grandchild's parent is the child");
  assert.notEqual(cell[0], p.pid);
  assert.equal(cell[2], 1);
});

test("process: a daemon may not start children", { timeout: 20_000 }, async () => {
  const cell = cells();
  const p = new Process({ target: "tryToSpawn", args: [cell], module, daemon: true });
  assert.equal(p.daemon, true);
  p.start();
  assert.throws(() => (p.daemon = false), /before start/);
  await p.join(10_000);
  assert.equal(cell[0], 2);
});

test("process: activeChildren lists running children only", { timeout: 20_000 }, async () => {
  const p = new Process({ target: "forever", args: [cells()], module });
  assert.deepEqual(activeChildren(), []);
  p.start();
  assert.deepEqual(activeChildren(), [p]);
  p.terminate();
  await p.join(10_000);
  assert.deepEqual(activeChildren(), []);
});

test("process: await using terminates a running process", { timeout: 20_000 }, async () => {
  let kept: Process | undefined;
  {
    await using p = new Process({ target: "forever", args: [cells()], module });
    p.start();
    kept = p;
  }
  assert.throws(() => kept!.exitCode, /closed/);
  assert.deepEqual(activeChildren(), []);
});

test("process: everything a child prints reaches stdout before join() resolves", { timeout: 30_000 }, async () => {
  const script = await runScript("tests/fixtures/output.ts");
  assert.equal(script.code, 0, script.stderr);
  const lines = script.stdout.trim().split("\n");
  assert.equal(lines.at(-1), "joined");
  assert.equal(lines.filter((line) => line.startsWith("line ")).length, 600);
});

test("process: an uncaught error prints a Python-like report to stderr", { timeout: 30_000 }, async () => {
  const script = await runScript("tests/fixtures/report.ts");
  assert.equal(script.code, 0, script.stderr);
  assert.match(script.stderr, /^Process Process-1:\nRangeError: out of range in the child\n\s+at /m);
  assert.match(script.stdout, /exitCode 1/);
});

test(
  "process: the import.meta.main guard keeps a child from re-running the main block",
  { timeout: 30_000 },
  async () => {
    const script = await runScript("tests/fixtures/guard.ts");
    assert.equal(script.code, 0, script.stderr);
    // The module's top level runs in both processes; the guarded block only in the main one.
    assert.deepEqual(script.stdout.trim().split("\n").sort(), [
      "child ran",
      "main block ran once",
      "top level",
      "top level",
    ]);
  },
);

test(
  "process: a module that starts a process at its top level, unguarded, makes one child, which fails naming the guard",
  { timeout: 30_000 },
  async () => {
    // Without the check each child imports the module and starts the next: 165 children and ~1 GB in 8 s on Bun.
    const script = await runScript("tests/fixtures/unguarded.ts", 15_000);
    assert.equal(script.code, 0, script.stderr);
    assert.deepEqual(script.stdout.trim().split("\n"), [
      "top level in MainProcess",
      "top level in Process-1",
      "Process-1 ended with exitCode 1",
    ]);
    const reports = script.stderr.match(/^Process [^\n]*:$/gm) ?? [];
    assert.deepEqual(reports, ["Process Process-1:"], "only the one child was made, and it failed");
    assert.match(
      script.stderr,
      /^Error: Process-1:1 was started while Process-1 was still importing file:\/\/\S+\/tests\/fixtures\/unguarded\.ts to find its target: .*if \(import\.meta\.main\)/m,
    );
  },
);

test("process: start → join of an empty target stays within a bound", { timeout: 30_000 }, async () => {
  const t = performance.now();
  const p = new Process({ target: store, args: [cells(), 1], module });
  p.start();
  await p.join(10_000);
  const took = performance.now() - t;
  assert.equal(p.exitCode, 0);
  assert.ok(took < 3_000, `start → join took ${took} ms`);
});

test(
  "process: terminating children that are still importing an async module ends them all",
  { timeout: 60_000 },
  async () => {
    // Node 24 aborts the whole program when a worker is terminated during the
    // evaluation of a module with a top-level await (nodejs/node#60755).
    const tla = new URL("./fixtures/tla.ts", import.meta.url);
    const ps = Array.from({ length: 8 }, () => new Process({ target: "forever", args: [cells()], module: tla }));
    for (const [i, p] of ps.entries()) {
      p.start();
      setTimeout(() => p.terminate(), i * 7);
    }
    await Promise.all(ps.map((p) => p.join(20_000)));
    assert.deepEqual(ps.map((p) => p.exitCode), Array(8).fill(-15));
  },
);

test(
  "process: terminate() stops a child that is busy in synchronous code",
  {
    timeout: 30_000,
    // Deno 2.9 cannot stop a worker that never yields, with Web Workers or worker_threads alike
    // (denoland/deno#12831, #14003): the thread runs on after terminate(). See the README's support table.
    skip: adapter.runtime === "deno" ? "Deno cannot terminate a worker busy in synchronous code" : false,
  },
  async () => {
    const cell = cells();
    const p = new Process({ target: "spin", args: [cell], module });
    p.start();
    const started = performance.now();
    while (Atomics.load(cell, 0) === 0 && performance.now() - started < 10_000) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    p.terminate();
    await p.join(10_000);
    assert.equal(p.exitCode, -15);
    const after = Atomics.load(cell, 0);
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(Atomics.load(cell, 0), after, "the child stopped spinning");
  },
);

test(
  "process: a child over its memoryLimit ends with exit code 1, and the program goes on",
  {
    timeout: 30_000,
    // Only Node enforces a worker's heap limit: Bun ignores resourceLimits, Deno's Web Workers have none.
    skip: adapter.runtime !== "node" ? `${adapter.runtime} cannot limit a worker's memory` : false,
  },
  async () => {
    assert.throws(() => new Process({ target: "hog", module, memoryLimit: 0 }), RangeError);
    assert.throws(() => new Process({ target: "hog", module, memoryLimit: Number.NaN }), /memoryLimit must be/);
    const p = new Process({ target: "hog", module, memoryLimit: 32 });
    p.start();
    await p.join(20_000);
    assert.equal(p.exitCode, 1);
  },
);

test("process: a child's printed line comes before the parent's next line once the child has answered", {
  timeout: 30_000,
}, async () => {
  // worker_threads route a thread's output through the parent's event loop, so a
  // result could overtake the line printed before it; the adapter writes directly.
  const script = await runScript("tests/fixtures/print_order.ts");
  assert.equal(script.code, 0, script.stderr);
  const lines = script.stdout.trim().split("\n");
  assert.equal(lines.length, 40);
  for (let i = 0; i < 20; i++) {
    assert.ok(lines.indexOf(`child line ${i}`) < lines.indexOf(`parent line ${i}`), `line ${i}: ${lines.join(" | ")}`);
  }
});

test(
  "process: terminate() right after start() stops it before its target runs, and shows within 100 ms",
  { timeout: 20_000 },
  async () => {
    // Python's docs example: start, terminate, sleep 0.1 s, and the process is dead with exit code -15.
    // Here it is so at once: a child that has not yet claimed its start runs none of its code.
    const cell = cells();
    const p = new Process({ target: store, args: [cell, 1], module });
    p.start();
    p.terminate();
    assert.equal(p.isAlive(), false);
    assert.equal(p.exitCode, -15);
    assert.deepEqual(activeChildren(), []);
    const killed = new Process({ target: store, args: [cell, 2], module });
    killed.start();
    killed.kill();
    assert.deepEqual([killed.isAlive(), killed.exitCode], [false, -9]);
    await Promise.all([p.join(100), killed.join(100)]);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(cell[0], 0, "a process terminated before it ran never runs its target");
  },
);

test(
  "process: terminate() at any moment of the start: a child reported dead at once never runs its target",
  { timeout: 60_000 },
  async () => {
    // The parent posts the bootstrap with the worker; the child claims its start before it loads the target's
    // module, and a stop that claims it first ends the child at once. Stops land before, during and after.
    const outcomes = new Set<string>();
    for (let delay = 0; delay <= 40; delay += 2) {
      const cell = cells();
      const p = new Process({ target: store, args: [cell, 1], module });
      p.start();
      await new Promise((resolve) => setTimeout(resolve, delay));
      if (p.exitCode !== null) {
        // It ran its target and ended by itself first; a later stop changes nothing.
        assert.deepEqual([p.exitCode, cell[0]], [0, 1]);
        outcomes.add("ended first");
        continue;
      }
      p.terminate();
      const atOnce = !p.isAlive();
      await p.join(5_000);
      assert.equal(p.exitCode, -15, `stopped after ${delay} ms`);
      await new Promise((resolve) => setTimeout(resolve, 20));
      if (atOnce) assert.equal(cell[0], 0, `reported dead at once after ${delay} ms, yet its target ran`);
      outcomes.add(atOnce ? "at once" : cell[0] ? "ran" : "stopped while loading");
    }
    assert.ok(outcomes.has("at once"), [...outcomes].join(", "));
    assert.deepEqual(activeChildren(), []);
  },
);

test("process: a subclass's default name is its class's, on the one counter every class shares", () => {
  // CPython: three Process() then class Sub(Process) prints Sub-4, Sub-5; then Process-6.
  class Sub extends Process {}
  const first = new Process();
  const n = Number(first.name.match(/^Process-(\d+)$/)?.[1]);
  assert.ok(n >= 1, first.name);
  assert.deepEqual(
    [new Sub().name, new Sub().name, new Process().name, new Sub({ name: "mine" }).name],
    [`Sub-${n + 1}`, `Sub-${n + 2}`, `Process-${n + 3}`, "mine"],
  );
  assert.match(String(new Sub()), new RegExp(`^<Sub name='Sub-${n + 5}' initial>$`));
});

test("process: run() called directly runs the target in the caller, synchronously, starting nothing", () => {
  const seen: unknown[] = [];
  const p = new Process({ target: (a: number, b: string) => seen.push([a, b]), args: [1, "x"] });
  const returned = p.run();
  assert.deepEqual(seen, [[1, "x"]], "the target ran before run() returned");
  assert.equal(returned, 1);
  assert.equal(p.isAlive(), false);
  assert.equal(p.pid, undefined);
  assert.equal(p.exitCode, null);
  assert.equal(activeChildren().length, 0);
  assert.equal(new Process().run(), undefined, "no target: nothing to run, as Python's");
  const byName = new Process({ target: "store", args: [cells(), 1], module });
  assert.throws(() => byName.run(), { name: "TypeError", message: /needs the target function itself.*'store'/ });
});

test("process: an exported function in args travels by reference; a self-contained one as source", {
  timeout: 40_000,
}, async () => {
  const { mul } = await import("./fixtures/tasks.ts");
  const tasks = new URL("./fixtures/tasks.ts", import.meta.url);
  const results = new Queue<[string, unknown, boolean]>();
  const ps = [[mul, [6, 7]], [(a: number) => a * 2, [4]]].map((task) =>
    new Process({ target: "calculateArgs", args: [task, results], module: tasks })
  );
  for (const p of ps) p.start();
  const got = [await results.get({ timeout: 20_000 }), await results.get({ timeout: 20_000 })];
  await Promise.all(ps.map((p) => p.join(10_000)));
  assert.deepEqual(ps.map((p) => p.exitCode), [0, 0]);
  assert.deepEqual(got.sort((x, y) => String(x[0]).localeCompare(String(y[0]))), [["", 8, false], ["mul", 42, true]]);
});

const typesOnly = new URL("./fixtures/process_types_only.ts", import.meta.url);

test(
  "process: a target module that imports only the library's types still receives a Queue that works",
  { timeout: 20_000 },
  async () => {
    const queue = new Queue<string>();
    const p = new Process({ target: "putOn", args: [queue, "from a types-only module"], module: typesOnly });
    p.start();
    assert.equal(await queue.get({ timeout: 10_000 }), "from a types-only module");
    await p.join(10_000);
    assert.equal(p.exitCode, 0);
    queue.close();
  },
);

test(
  "process: state inherited at start reaches a module the child loads only later (shared memory by name)",
  { timeout: 20_000 },
  async () => {
    const block = new SharedMemory({ create: true, size: 16 });
    const cell = cells();
    // Only strings and a SharedArrayBuffer view: nothing in the args makes the child load the library at start.
    const p = new Process({ target: "writeLater", args: [block.name, 99, cell], module: typesOnly });
    p.start();
    await p.join(10_000);
    assert.equal(p.exitCode, 0);
    assert.equal([cell[0], block.buf[0]].join(), "1,99");
    block.close();
    block.unlink();
  },
);
