import { test } from "node:test";
import assert from "node:assert/strict";
import {
  activeChildren,
  BoundedSemaphore,
  Condition,
  currentProcess,
  getAllStartMethods,
  getContext,
  getStartMethod,
  JoinableQueue,
  Lock,
  Pool,
  Process,
  type ProcessOptions,
  Queue,
  RawArray,
  RLock,
  setStartMethod,
  SharedArray,
  SimpleQueue,
  Value,
} from "../mod.ts";
import { adapter } from "../src/adapters/mod.ts";
import { Job } from "./fixtures/context.ts";
import { checkNoLeaks } from "./leaks.ts";
import { runScript } from "./scripts.ts";

checkNoLeaks();

const module = new URL("./fixtures/context.ts", import.meta.url);
const cells = (n = 1) => new Int32Array(new SharedArrayBuffer(4 * n));
// Deno's Web Workers cannot be unref'd, so forkserver's waiting spare worker would keep a Deno program
// alive forever: Deno has no forkserver (see the README's support table).
const noForkserver = adapter.canUnref ? false : "Deno has no forkserver: its Web Workers cannot be unref'd";

async function heartbeat(cell: Int32Array): Promise<void> {
  const started = performance.now();
  while (Atomics.load(cell, 0) === 0 && performance.now() - started < 10_000) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  assert.ok(Atomics.load(cell, 0) > 0, "the child was running");
}

test("context: start methods, and a context's Process", { timeout: 20_000 }, async () => {
  assert.equal(getStartMethod(), "spawn");
  assert.deepEqual(getAllStartMethods(), adapter.canUnref ? ["spawn", "forkserver"] : ["spawn"]);
  assert.throws(() => setStartMethod("fork"), /'fork' is not available: workers cannot fork a JavaScript heap/);
  assert.throws(() => setStartMethod("spawn"), /already been set/);
  setStartMethod("spawn", true);
  assert.throws(() => getContext("threads"), /'threads' is not available/);
  const ctx = getContext("spawn");
  assert.equal(ctx.startMethod, "spawn");
  assert.equal(getContext(), ctx, "with no method, the context of the one in use");
  const q = new Queue<unknown>();
  const p = new ctx.Process({ target: "identify", args: [q], module });
  assert.ok(p instanceof Process);
  assert.match(p.name, /^SpawnProcess-\d+$/, "named after its class, as Python's");
  p.start();
  assert.deepEqual(await q.get({ timeout: 10_000 }), {
    name: p.name,
    pid: p.pid,
    daemon: false,
    parent: { name: "MainProcess", pid: currentProcess().pid },
  });
  await p.join(10_000);
  assert.equal(p.exitCode, 0);
});

test(
  "context: Deno refuses forkserver, saying why",
  // Only a runtime whose workers cannot be unref'd refuses it: Deno.
  { timeout: 5_000, skip: adapter.canUnref ? "this runtime has forkserver" : false },
  () => {
    const why = /'forkserver' is not available on deno: its workers cannot be unref'd/;
    assert.throws(() => setStartMethod("forkserver", true), why);
    assert.throws(() => getContext("forkserver"), why);
    assert.equal(getStartMethod(), "spawn");
  },
);

test(
  "context: a forkserver child has its name, pid, parent and exit code, as a spawned one",
  { timeout: 30_000, skip: noForkserver },
  async () => {
    const ctx = getContext("forkserver");
    assert.equal(ctx.startMethod, "forkserver");
    const q = new Queue<unknown>();
    for (const custom of [undefined, "custom"]) {
      const p = new ctx.Process({ target: "identify", args: [q], module, name: custom });
      assert.ok(p instanceof Process);
      assert.match(p.name, custom === undefined ? /^ForkServerProcess-\d+$/ : /^custom$/);
      p.start();
      assert.deepEqual(activeChildren(), [p], "the spare worker is not a child");
      assert.deepEqual(await q.get({ timeout: 10_000 }), {
        name: p.name,
        pid: p.pid,
        daemon: false,
        parent: { name: "MainProcess", pid: currentProcess().pid },
      });
      await p.join(10_000);
      assert.equal(p.exitCode, 0);
      assert.deepEqual(activeChildren(), []);
    }
  },
);

test(
  "context: every exit code under forkserver: 0, 1, n, -15, -9",
  { timeout: 30_000, skip: noForkserver },
  async () => {
    const { Process: ForkServerProcess } = getContext("forkserver");
    const [a, b] = [cells(), cells()];
    const ps = [
      new ForkServerProcess({ target: "exitWith", args: [0], module }),
      new ForkServerProcess({ target: "fail", module }),
      new ForkServerProcess({ target: "exitWith", args: [7], module }),
      new ForkServerProcess({ target: "forever", args: [a], module }),
      new ForkServerProcess({ target: "forever", args: [b], module }),
    ];
    for (const p of ps) p.start();
    await Promise.all([heartbeat(a), heartbeat(b)]);
    ps[3].terminate();
    ps[4].kill();
    await Promise.all(ps.map((p) => p.join(10_000)));
    assert.deepEqual(ps.map((p) => p.exitCode), [0, 1, 7, -15, -9]);
  },
);

test(
  "context: forkserver starts in a row and at once all run, each on the spare the last one left",
  { timeout: 60_000, skip: noForkserver },
  async () => {
    const { Process: ForkServerProcess } = getContext("forkserver");
    const total = new Value("i", 0);
    const pids = new Set<number | undefined>();
    for (let i = 1; i <= 5; i++) {
      const p = new ForkServerProcess({ target: "add", args: [total, i], module });
      p.start();
      await p.join(10_000);
      assert.equal(p.exitCode, 0);
      pids.add(p.pid);
    }
    assert.equal(total.value, 15);
    const burst = [10, 20, 30, 40].map((n) => new ForkServerProcess({ target: "add", args: [total, n], module }));
    for (const p of burst) p.start();
    await Promise.all(burst.map((p) => p.join(10_000)));
    assert.deepEqual(burst.map((p) => p.exitCode), [0, 0, 0, 0]);
    for (const p of burst) pids.add(p.pid);
    assert.equal(total.value, 115);
    assert.equal(pids.size, 9, "each process has a pid of its own");
  },
);

test(
  "context: a forkserver child runs on a worker started before its start(), unless its code is in the library's file",
  { timeout: 30_000, skip: noForkserver },
  async () => {
    const q = new Queue<number>();
    const threadOf = async (processClass: typeof Process, options: ProcessOptions = { target: "reportThread" }) => {
      const p = new processClass({ module, ...options, args: [q] });
      p.start();
      const id = await q.get({ timeout: 10_000 });
      await p.join(10_000);
      return id;
    };
    const { Process: ForkServerProcess } = getContext("forkserver");
    await threadOf(ForkServerProcess); // leaves a spare behind
    const spawned = await threadOf(getContext("spawn").Process);
    const warm = await threadOf(ForkServerProcess);
    // Where forkserver exists the workers are worker_threads, numbered in creation order.
    assert.ok(warm < spawned, `the forkserver child's thread (${warm}) is older than the spawned one's (${spawned})`);
    // As in an app bundle, whose one file is both the library and the app: a spare that loaded it would have run
    // the app's top-level code ahead of time, so such a process gets a new worker and the spare waits on.
    const inLibrary = await threadOf(ForkServerProcess, {
      target: async (queue: Queue<number>) => await queue.put(process.getBuiltinModule("node:worker_threads").threadId),
      module: new URL("../mod.ts", import.meta.url),
    });
    const next = await threadOf(ForkServerProcess);
    assert.ok(
      next < inLibrary,
      `the spare (${next}) is older than the thread of the process in the library (${inLibrary})`,
    );
  },
);

test(
  "context: terminate() or kill() right after a forkserver start()",
  { timeout: 60_000, skip: noForkserver },
  async () => {
    const { Process: ForkServerProcess } = getContext("forkserver");
    // Twice each: the first takes a spare that may be ready, the next one that has only just started.
    const ps = Array.from({ length: 4 }, () => new ForkServerProcess({ target: "forever", args: [cells()], module }));
    for (const [i, p] of ps.entries()) {
      p.start();
      if (i % 2 === 0) p.terminate();
      else p.kill();
    }
    await Promise.all(ps.map((p) => p.join(20_000)));
    assert.deepEqual(ps.map((p) => p.exitCode), [-15, -9, -15, -9]);
    // Node 24 aborts the program when a worker is terminated while it evaluates a module with a top-level
    // await (nodejs/node#60755): a forkserver child must be held off it as a spawned one is.
    const tla = new URL("./fixtures/tla.ts", import.meta.url);
    const late = Array.from(
      { length: 6 },
      () => new ForkServerProcess({ target: "forever", args: [cells()], module: tla }),
    );
    for (const [i, p] of late.entries()) {
      p.start();
      setTimeout(() => p.terminate(), i * 7);
    }
    await Promise.all(late.map((p) => p.join(20_000)));
    assert.deepEqual(late.map((p) => p.exitCode), Array(6).fill(-15));
  },
);

test(
  "context: daemon rules and subclasses under forkserver",
  { timeout: 30_000, skip: noForkserver },
  async () => {
    const { Process: ForkServerProcess } = getContext("forkserver");
    const cell = cells();
    const daemon = new ForkServerProcess({ target: "tryToSpawn", args: [cell], module, daemon: true });
    daemon.start();
    await daemon.join(10_000);
    assert.equal(cell[0], 2, "a daemon may not start children");
    const q = new Queue<unknown>();
    const job = new Job(q);
    assert.equal(job.name, "job");
    job.start();
    assert.equal(await q.get({ timeout: 10_000 }), "a Job", "the subclass and its fields reach the child");
    await job.join(10_000);
    assert.equal(job.exitCode, 0);
  },
);

test(
  "context: an argument that cannot be sent fails at a forkserver start(), naming it",
  { timeout: 10_000, skip: noForkserver },
  () => {
    const p = new (getContext("forkserver").Process)({ target: "add", args: [Symbol("s")], module });
    assert.throws(() => p.start(), { name: "TypeError", message: /^args\[0\] is a symbol/ });
    assert.equal(p.isAlive(), false);
    assert.deepEqual(activeChildren(), []);
  },
);

test(
  "context: a forkserver child sees the environment as it is at start()",
  { timeout: 30_000, skip: noForkserver },
  async () => {
    const { Process: ForkServerProcess } = getContext("forkserver");
    const key = "MP_FORKSERVER_TEST";
    const q = new Queue<string | null>();
    const read = async () => {
      const p = new ForkServerProcess({ target: "readEnvironment", args: [q, key], module });
      p.start();
      const seen = await q.get({ timeout: 10_000 });
      await p.join(10_000);
      return seen;
    };
    // Each start leaves a spare that copied the environment as it was then.
    assert.equal(await read(), null);
    process.env[key] = "set later";
    try {
      assert.equal(await read(), "set later");
    } finally {
      delete process.env[key];
    }
    assert.equal(await read(), null);
  },
);

test(
  "context: setStartMethod('forkserver') applies to Process and Pool, and 'spawn' comes back",
  { timeout: 30_000, skip: noForkserver },
  async () => {
    setStartMethod("forkserver", true);
    try {
      assert.equal(getStartMethod(), "forkserver");
      assert.equal(getContext().startMethod, "forkserver");
      const total = new Value("i", 0);
      const p = new Process({ target: "add", args: [total, 2], module });
      p.start();
      await p.join(10_000);
      assert.equal(p.exitCode, 0);
      await using pool = new Pool({ processes: 2, module });
      assert.deepEqual(await pool.map("square", [1, 2, 3], { timeout: 10_000 }), [1, 4, 9]);
    } finally {
      setStartMethod("spawn", true);
    }
    const p = new Process({ target: "add", args: [new Value("i", 0), 1], module });
    p.start();
    await p.join(10_000);
    assert.equal(p.exitCode, 0);
  },
);

test(
  "context: a Pool given the forkserver context replaces its workers on spares",
  { timeout: 30_000, skip: noForkserver },
  async () => {
    await using pool = new Pool({ processes: 2, maxtasksperchild: 1, module, context: getContext("forkserver") });
    assert.deepEqual(await pool.map("square", [1, 2, 3, 4, 5, 6], { chunksize: 1, timeout: 20_000 }), [
      1,
      4,
      9,
      16,
      25,
      36,
    ]);
  },
);

test(
  "context: a forkserver Process with a memoryLimit still gets its limit",
  {
    timeout: 30_000,
    // Only Node enforces a worker's heap limit: Bun ignores resourceLimits, Deno's Web Workers have none.
    skip: adapter.runtime !== "node" ? `${adapter.runtime} cannot limit a worker's memory` : false,
  },
  async () => {
    const p = new (getContext("forkserver").Process)({ target: "hog", module, memoryLimit: 32 });
    p.start();
    await p.join(20_000);
    assert.equal(p.exitCode, 1);
  },
);

test(
  "context: a program that set forkserver exits by itself once its children ended, their output in order",
  { timeout: 30_000, skip: noForkserver },
  async () => {
    const script = await runScript("tests/fixtures/forkserver_exit.ts");
    assert.equal(script.code, 0, script.stderr);
    assert.equal(script.stderr, "");
    const lines = script.stdout.trim().split("\n");
    assert.equal(lines.length, 153);
    for (const [k, at] of [[1, 50], [2, 101], [3, 152]]) {
      assert.match(lines[at], new RegExp(`^joined Process-${k} 0$`));
      assert.ok(lines.slice(at - 50, at).every((line) => line.endsWith(`from Process-${k}`)), lines.join(" | "));
    }
  },
);

test("context: a context carries every factory, as Python's; its Pool's workers start with its method", {
  timeout: 60_000,
}, async () => {
  for (const method of getAllStartMethods()) {
    const ctx = getContext(method);
    assert.equal(ctx.getStartMethod(), method);
    assert.equal(ctx.getContext(), getContext(), "a context's getContext is the library's");
    assert.deepEqual(ctx.getAllStartMethods(), getAllStartMethods());
    assert.ok(ctx.Queue() instanceof Queue);
    assert.ok(ctx.JoinableQueue(2) instanceof JoinableQueue);
    assert.ok(ctx.SimpleQueue() instanceof SimpleQueue);
    assert.ok(ctx.Lock() instanceof Lock);
    assert.ok(ctx.RLock() instanceof RLock);
    assert.equal(ctx.Semaphore(3).getValue(), 3);
    assert.ok(ctx.BoundedSemaphore(1) instanceof BoundedSemaphore);
    assert.throws(() => ctx.BoundedSemaphore(1).release(), /released too many times/);
    assert.ok(ctx.Condition(ctx.Lock()) instanceof Condition);
    assert.equal(ctx.Event().isSet(), false);
    assert.equal(ctx.Barrier(2).parties, 2);
    assert.equal(ctx.Value("b", 300).value, 44, "the same Value as new Value()");
    assert.throws(() => ctx.RawValue("i", 1).getLock(), /has no lock/);
    assert.deepEqual(ctx.Array("i", [1, 2]).toArray(), [1, 2]);
    assert.ok(ctx.SharedArray("d", 2) instanceof SharedArray);
    assert.ok(ctx.RawArray("B", 2) instanceof RawArray);
    const [a, b] = ctx.Pipe<number>();
    await a.send(7);
    assert.equal(await b.recv(), 7);
    a.close();
    b.close();

    const total = ctx.Value("i", 0);
    const pool = ctx.Pool({ processes: 2, module });
    try {
      const workers = activeChildren();
      assert.equal(workers.length, 2);
      assert.ok(workers.every((w) => w instanceof ctx.Process), `the pool's workers are ${method} processes`);
      await pool.apply("add", [total, 5]);
      assert.equal(total.value, 5);
    } finally {
      pool.close();
      await pool.join();
    }
    const plain = ctx.Pool(1);
    assert.ok(activeChildren().every((w) => w instanceof ctx.Process), "ctx.Pool(n) too");
    plain.terminate();
    await plain.join();
    await using manager = await ctx.Manager();
    const d = manager.dict();
    await d.set("k", 1);
    assert.equal(await d.get("k"), 1);
  }
});
