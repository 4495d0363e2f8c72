import { test } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  AuthenticationError,
  BrokenBarrierError,
  currentProcess,
  Empty,
  Process,
  Queue,
  TimeoutError,
} from "../mod.ts";
import { Client } from "../src/connection/listener.ts";
import { dumps, loads } from "../src/python/pickle.ts";
import {
  BaseManager,
  ManagedQueue,
  type RemoteDictProxy,
  RemoteError,
  type RemotePoolProxy,
  SyncManager,
} from "../src/managers/remote/mod.ts";
import { DictProxy, ListProxy, NamespaceProxy } from "../src/managers.ts";
// The server's own Barrier, called as the server calls it (not public: a program reaches it through a proxy).
import { ManagedBarrier } from "../src/managers/remote/waiting_referents.ts";
import { childUsesProxy } from "./fixtures/remote_managers_child.ts";
import { add, exitWith, failOnThree, inc, sleepItem, sleepy } from "./fixtures/pool.ts";
import { PyGlobal } from "../src/python/pickle.ts";
import { checkNoLeaks } from "./leaks.ts";

checkNoLeaks();

const fixtures = new URL("./fixtures/", import.meta.url).pathname;
const KEY = "abracadabra";
/** The module of the tasks a remote Pool runs (the server's workers import it). */
const POOL_TASKS = new URL("./fixtures/pool.ts", import.meta.url);

/** The command that runs a TypeScript program on the runtime under test (MP_RUN under `npm test`). */
function tsCommand(): string[] {
  if (process.env.MP_RUN) return JSON.parse(process.env.MP_RUN);
  if ("Deno" in globalThis) return [process.execPath, "run", "-A"];
  return [process.execPath];
}

interface Program {
  child: ChildProcess;
  /** Resolves with the first stdout line that starts with `prefix`. */
  line(prefix: string, timeout?: number): Promise<string>;
  /** Resolves with the exit code and everything printed; rejects after `timeout` ms, killing it. */
  exit(timeout?: number): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }>;
}

const started = new Set<ChildProcess>();

function program(command: string[], args: string[]): Program {
  const [cmd, ...pre] = command;
  const child = spawn(cmd, [...pre, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1" },
  });
  started.add(child);
  let stdout = "";
  let stderr = "";
  const listeners = new Set<() => void>();
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
    stdout += chunk;
    for (const listener of listeners) listener();
  });
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const closed = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    child.on("close", (code, signal) => (started.delete(child), resolve({ code, signal })))
  );
  return {
    child,
    line: (prefix, timeout = 30_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          // Whole lines only: a line may come in two chunks.
          const found = stdout.split("\n").slice(0, -1).find((line) => line.startsWith(prefix));
          if (found === undefined) return;
          listeners.delete(check);
          clearTimeout(timer);
          resolve(found);
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`no line "${prefix}" within ${timeout} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
        }, timeout);
        void closed.then(() =>
          setTimeout(() => {
            if (!listeners.has(check)) return;
            listeners.delete(check);
            clearTimeout(timer);
            reject(new Error(`${args.join(" ")} ended without "${prefix}"\nstdout: ${stdout}\nstderr: ${stderr}`));
          }, 10)
        );
        listeners.add(check);
        check();
      }),
    exit: async (timeout = 60_000) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          child.kill("SIGKILL");
          reject(new Error(`${args.join(" ")} did not end within ${timeout} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
        }, timeout);
      });
      try {
        return { ...(await Promise.race([closed, late])), stdout, stderr };
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/** Every program a test started is gone at its end, whatever happened. */
function cleanUp(): void {
  for (const child of started) child.kill("SIGKILL");
  started.clear();
}

/** A TS manager server program on `where` (["tcp", host, port] or ["unix", path]); its address once ready. */
async function tsServer(where: string[]): Promise<{ server: Program; address: [string, number] | string }> {
  const server = program(tsCommand(), [join(fixtures, "remote_managers_server.ts"), ...where, KEY]);
  const ready = (await server.line("ready ")).slice("ready ".length);
  return { server, address: where[0] === "tcp" ? [where[1], Number(ready)] : ready };
}

/** A Python SyncManager server program (with get_dict) on loopback TCP; its address once ready. */
async function pythonServer(): Promise<{ server: Program; address: [string, number] }> {
  const server = program(["python3"], [join(fixtures, "remote_queue_server.py"), "sync", "127.0.0.1", "0", KEY]);
  return { server, address: ["127.0.0.1", Number((await server.line("ready ")).slice(6))] };
}

function addressArgs(address: [string, number] | string): string[] {
  return typeof address === "string" ? ["unix", address] : ["tcp", address[0], String(address[1])];
}

/** Asks a server to shut down, as Python's manager does: `shutdown` on a fresh connection. */
async function shutDown(address: [string, number] | string): Promise<void> {
  const conn = await Client(address, { authkey: KEY });
  await conn.sendBytes(dumps([null, "shutdown", [], {}]));
  assert.deepEqual([...(loads(await conn.recvBytes()) as unknown[])], ["#RETURN", null]);
  conn.close();
}

/** Ends a test's server program: `manager` closes its connections, a shutdown request stops the server, which exits 0. */
async function stopServer(server: Program, address: [string, number] | string, manager: BaseManager): Promise<void> {
  await manager.shutdown();
  await shutDown(address);
  assert.equal((await server.exit()).code, 0);
}

function socketPath(): { path: string; done: () => void } {
  const folder = mkdtempSync(join(tmpdir(), "mp-rm-"));
  return { path: join(folder, "manager.sock"), done: () => rmSync(folder, { recursive: true, force: true }) };
}

test("remote managers: docs' QueueManager — a Python server, a TypeScript client, over TCP and a Unix socket", {
  timeout: 60_000,
}, async () => {
  const unix = socketPath();
  try {
    for (const where of [["tcp", "127.0.0.1", "0"], ["unix", unix.path]]) {
      const server = program(["python3"], [join(fixtures, "remote_queue_server.py"), ...where, KEY]);
      const ready = (await server.line("ready ")).slice(6);
      const address: [string, number] | string = where[0] === "tcp" ? ["127.0.0.1", Number(ready)] : ready;
      class QueueManager extends BaseManager {}
      QueueManager.register("get_queue");
      const manager = new QueueManager({ address, authkey: KEY });
      await manager.connect();
      const queue = manager.create("get_queue");
      await queue.put("hello");
      await queue.put({ n: 1, big: 2n ** 70n, bytes: new Uint8Array([0, 255]), none: null, list: [1.5, "x"] });
      assert.equal(await queue.get(), "hello");
      assert.deepEqual(await queue.get(), {
        n: 1,
        big: 2n ** 70n,
        bytes: new Uint8Array([0, 255]),
        none: null,
        list: [1.5, "x"],
      });
      // queue.Empty raised in Python arrives as the library's Empty.
      await assert.rejects(queue.get(false), Empty);
      assert.equal(await manager.numberOfObjects(), 1);
      await stopServer(server, address, manager);
    }
  } finally {
    unix.done();
    cleanUp();
  }
});

test("remote managers: docs' QueueManager — a TypeScript server, Python and TypeScript clients, TCP and Unix", {
  timeout: 90_000,
}, async () => {
  const unix = socketPath();
  try {
    for (const where of [["tcp", "127.0.0.1", "0"], ["unix", unix.path]]) {
      const { server, address } = await tsServer(where);
      const python = program(["python3"], [
        join(fixtures, "remote_queue_client.py"),
        ...addressArgs(address),
        KEY,
        "hello",
        "world",
      ]);
      const done = await python.exit();
      assert.equal(done.code, 0, done.stderr);
      assert.equal(
        done.stdout.trim(),
        "['hello', 'world', {'n': 1, 'big': 1180591620717411303424, 't': (1, 2.5), 'b': b'\\x00\\x01', 'none': None}]",
      );
      const ts = program(tsCommand(), [
        join(fixtures, "remote_managers_client.ts"),
        "queue",
        ...addressArgs(address),
        KEY,
        "a",
        "b",
      ]);
      const tsDone = await ts.exit();
      assert.equal(tsDone.code, 0, tsDone.stderr);
      assert.equal(tsDone.stdout.trim(), '["a","b"]');
      await shutDown(address);
      assert.equal((await server.exit()).code, 0);
    }
  } finally {
    unix.done();
    cleanUp();
  }
});

test("remote managers: a Python SyncManager client uses each typeid of our server with Python's own proxies", {
  timeout: 60_000,
}, async () => {
  try {
    const { server, address } = await tsServer(["tcp", "127.0.0.1", "0"]);
    const python = program(["python3"], [
      join(fixtures, "remote_sync_client.py"),
      String((address as [string, number])[1]),
      KEY,
    ]);
    const done = await python.exit();
    assert.equal(done.code, 0, done.stderr);
    assert.deepEqual(done.stdout.trim().split("\n"), [
      "{'a': 1, 'b': [1, 2]} 2 True 7 {'a': 1, 'b': [1, 2]}",
      "KeyError 'nope'",
      "9 4 [0, 1, 2, 9] [0, 1, 2, 9]",
      "1 two",
      "AttributeError 'Namespace' object has no attribute 'z'",
      "5 0",
      "Empty",
      "True False",
      "4",
      "True True",
      "3 5 3 array('i', [5, 2, 3]) array('i', [3, 5]) array('i', [5, 2, 3])",
      "IndexError array index out of range",
      "TypeError 'float' object cannot be interpreted as an integer",
      "[0, 1, 2] 3 0 False",
      "BrokenBarrierError True",
      "False",
      "[True] True False",
      "RuntimeError cannot notify on un-acquired lock",
      "False False", // Condition(lk2) is on lk2 itself
      "True",
      "objects 12", // d, l, ns, q, lk, v, e, a, b, c, lk2, c2: the RLock of `with m.RLock()` was dropped
    ]);
    await shutDown(address);
    assert.equal((await server.exit()).code, 0);
  } finally {
    cleanUp();
  }
});

test(
  "remote managers: 8 clients (6 TypeScript, 2 Python) hammer one remote dict under a remote Lock: the count is exact",
  {
    timeout: 120_000,
  },
  async () => {
    try {
      const { server, address } = await tsServer(["tcp", "127.0.0.1", "0"]);
      const N = 40;
      const clients = [
        ...Array.from({ length: 6 }, () =>
          program(tsCommand(), [
            join(fixtures, "remote_managers_client.ts"),
            "hammer",
            ...addressArgs(address),
            KEY,
            String(N),
          ])),
        ...Array.from(
          { length: 2 },
          () => program(["python3"], [join(fixtures, "remote_hammer.py"), ...addressArgs(address), KEY, String(N)]),
        ),
      ];
      for (const client of clients) {
        const done = await client.exit(100_000);
        assert.equal(done.code, 0, done.stderr);
        assert.equal(done.stdout.trim(), "done");
      }
      const { manager, dict } = await withDict(address);
      assert.equal(await dict.get("count"), 8 * N);
      await stopServer(server, address, manager);
    } finally {
      cleanUp();
    }
  },
);

test(
  "remote managers: 300 dict calls at once from one client each get their own reply, while a queue's get waits; Python and TypeScript servers",
  {
    timeout: 60_000,
  },
  async () => {
    // The dict's calls share one connection (client.ts, #pipelined): the replies must come back to the right callers,
    // errors included (a missing key is a KeyError on the wire), and a call that waits in the server must not hold them.
    try {
      for (const kind of ["python", "ts"]) {
        const { server, address } = kind === "python"
          ? await pythonServer()
          : await tsServer(["tcp", "127.0.0.1", "0"]);
        const manager = new SyncManager({ address, authkey: KEY });
        await manager.connect();
        const d = manager.dict<string, number>();
        const q = manager.Queue<string>();
        const waiting = q.get({ timeout: 30_000 });
        await Promise.all(Array.from({ length: 100 }, (_, i) => d.set(`k${i}`, i * 7)));
        const calls: Promise<unknown>[] = [];
        const expected: unknown[] = [];
        for (let i = 0; i < 100; i++) {
          calls.push(d.get(`k${i}`), d.get(`missing${i}`), d.has(i % 2 ? `k${i}` : `nope${i}`));
          expected.push(i * 7, undefined, i % 2 === 1);
        }
        calls.push(d.delete("never"), d.size());
        expected.push(false, 100);
        assert.deepEqual(await Promise.all(calls), expected, kind);
        await q.put("woken");
        assert.equal(await waiting, "woken", kind);
        await manager.shutdown();
        await shutDown(address);
        assert.equal((await server.exit()).code, 0, kind);
      }
    } finally {
      cleanUp();
    }
  },
);

test(
  "remote managers: a client SIGKILLed mid-call — the server goes on, frees its objects and its lock, keeps the item",
  {
    timeout: 60_000,
  },
  async () => {
    try {
      const { server, address } = await tsServer(["tcp", "127.0.0.1", "0"]);
      class QueueManager extends SyncManager {}
      QueueManager.register("get_queue");
      QueueManager.register("get_lock", undefined, { proxytype: "AcquirerProxy" });
      const manager = new QueueManager({ address, authkey: KEY });
      await manager.connect();
      const before = await manager.numberOfObjects();
      const victim = program(tsCommand(), [
        join(fixtures, "remote_managers_client.ts"),
        "hang",
        ...addressArgs(address),
        KEY,
      ]);
      await victim.line("waiting");
      assert.equal(await manager.numberOfObjects(), before + 2);
      victim.child.kill("SIGKILL");
      assert.equal((await victim.exit()).signal, "SIGKILL");
      // The lock it held is released and its get() takes nothing: our item stays for us.
      const lock = manager.create("get_lock");
      assert.equal(await lock.acquire({ timeout: 10_000 }), true);
      await lock.release();
      const queue = manager.create("get_queue");
      await queue.put("kept");
      assert.equal(await queue.get({ timeout: 10_000 }), "kept");
      // Its two references went with its lease; ours remain.
      assert.equal(await manager.numberOfObjects(), 2);
      await stopServer(server, address, manager);
      // Python's server is not run here: it cannot tell a killed client's thread from a live one, so its sleeper
      // may take the next notify, and whether a lock that client held looks held depends on thread idents reused.
    } finally {
      cleanUp();
    }
  },
);

test("remote managers: the server SIGKILLed mid-call — the waiting call and later ones reject, nothing hangs", {
  timeout: 60_000,
}, async () => {
  try {
    const { server, address } = await tsServer(["tcp", "127.0.0.1", "0"]);
    class QueueManager extends SyncManager {}
    QueueManager.register("get_queue");
    const manager = new QueueManager({ address, authkey: KEY });
    await manager.connect();
    const queue = manager.create("get_queue");
    await queue.qsize();
    const waiting = queue.get();
    await new Promise((resolve) => setTimeout(resolve, 100));
    server.child.kill("SIGKILL");
    await assert.rejects(waiting, {
      name: "EOFError",
      message: /the manager at .* closed the connection during get\(\)/,
    });
    await assert.rejects(queue.put(1), new RegExp(`${(address as [string, number])[1]}`));
    await manager.shutdown();
    assert.equal((await server.exit()).signal, "SIGKILL");
  } finally {
    cleanUp();
  }
});

test("remote managers: garbage on a connection closes it with a clear error; a wrong key fails; the server goes on", {
  timeout: 60_000,
}, async () => {
  try {
    const { server, address } = await tsServer(["tcp", "127.0.0.1", "0"]);
    // Authenticated, then bytes that are no pickle: a #TRACEBACK saying so, then end of file.
    const conn = await Client(address, { authkey: KEY });
    await conn.sendBytes(new TextEncoder().encode("this is no pickle"));
    const [kind, text] = loads(await conn.recvBytes()) as [string, string];
    assert.equal(kind, "#TRACEBACK");
    assert.match(text, /no pickle.*closing the connection/);
    await assert.rejects(conn.recvBytes(), { name: "EOFError" });
    conn.close();
    // A pickle that is no request.
    const odd = await Client(address, { authkey: KEY });
    await odd.sendBytes(dumps({ hello: 1 }));
    assert.match((loads(await odd.recvBytes()) as string[])[1], /a manager request is a tuple/);
    odd.close();
    // A wrong key fails the client with AuthenticationError.
    const wrong = new SyncManager({ address, authkey: "not the key" });
    await assert.rejects(wrong.connect(), AuthenticationError);
    // The server still serves.
    const manager = new SyncManager({ address, authkey: KEY });
    await manager.connect();
    const d = manager.dict([["a", 1]]);
    assert.equal(await d.get("a"), 1);
    await manager.shutdown();
    await shutDown(address);
    const done = await server.exit();
    assert.equal(done.code, 0);
    assert.match(done.stderr, /no pickle/);
  } finally {
    cleanUp();
  }
});

test("remote managers: start() serves in a worker; proxies have the in-program Manager()'s methods and errors", {
  timeout: 60_000,
}, async () => {
  await using manager = new SyncManager({ address: ["127.0.0.1", 0], authkey: KEY });
  await manager.start();
  assert.equal(typeof (manager.address as [string, number])[1], "number");
  const d = manager.dict<number | string, unknown>([[1, "one"]]);
  assert.ok(d instanceof DictProxy);
  await d.set("2", 2);
  assert.deepEqual(await d.toMap(), new Map<unknown, unknown>([[1, "one"], ["2", 2]]));
  assert.equal(await d.get("missing"), undefined);
  assert.equal(await d.get("missing", 0), 0);
  assert.equal(await d.has(1), true);
  assert.equal(await d.delete(1), true);
  assert.equal(await d.delete(1), false);
  await assert.rejects(d.pop("nope"), RangeError);
  assert.equal(await d.size(), 1);
  const l = manager.list([0, 1, 2]);
  assert.ok(l instanceof ListProxy);
  await l.append(3);
  assert.equal(await l.get(-1), 3);
  await assert.rejects(l.get(10), RangeError);
  await l.clear();
  assert.deepEqual(await l.toArray(), []);
  const ns = manager.Namespace<{ x: number; y: string }>({ x: 1 });
  assert.ok(ns instanceof NamespaceProxy);
  await ns.set("y", "two");
  assert.deepEqual(await ns.toObject(), { x: 1, y: "two" });
  assert.equal(await ns.has("z"), false);
  const q = manager.Queue<string>();
  await assert.rejects(q.get({ timeout: 20 }), Empty);
  await q.put("x");
  assert.equal(await q.get(), "x");
  const lock = manager.Lock();
  assert.equal(await lock.acquire(), true);
  assert.equal(await lock.acquire({ timeout: 20 }), false);
  await lock.release();
  // A proxy stored in a remote dict comes back as a proxy of the same list.
  await d.set("list", l);
  const back = (await d.get("list")) as ListProxy<number>;
  await back.append(7);
  assert.deepEqual(await l.toArray(), [7]);
  // An aborted get takes no item.
  const abort = new AbortController();
  const pending = q.get({ signal: abort.signal });
  setTimeout(() => abort.abort(new Error("stop")), 50);
  await assert.rejects(pending, /stop/);
  await q.put("after");
  assert.equal(await q.get({ timeout: 5_000 }), "after");
  assert.ok((await manager.numberOfObjects()) >= 5);
  // start()'s server is a daemon (a manager never shut down does not hold the program open), and a daemon has
  // no children: its Pool says so (Python's server process is no daemon; serve a Pool from a server program).
  const pool = manager.Pool(1, { module: POOL_TASKS });
  await assert.rejects(pool.map(inc, [1, 2]), /daemonic processes are not allowed to have children/);
});

test("remote managers: currentProcess().authkey is the default key, inherited by a child; a proxy travels in a Queue", {
  timeout: 60_000,
}, async () => {
  assert.equal(currentProcess().authkey.length, 32);
  await using manager = new SyncManager({ address: ["127.0.0.1", 0] });
  await manager.start();
  const d = manager.dict<string, number>([["parent", 1]]);
  await d.size();
  const inbox = new Queue<unknown>();
  const out = new Queue<unknown>();
  const child = new Process({
    target: childUsesProxy,
    module: new URL("./fixtures/remote_managers_child.ts", import.meta.url),
    args: [manager.address, inbox, out],
  });
  child.start();
  await inbox.put(d);
  assert.equal(await out.get({ timeout: 20_000 }), 1);
  await child.join(20_000);
  assert.equal(child.exitCode, 0);
  assert.equal(await d.get("child"), 42);
});

test("remote managers: bad input — addresses, keys, typeids, calls before connect, unknown methods", {
  timeout: 30_000,
}, async () => {
  assert.throws(() => new SyncManager({ address: ["127.0.0.1", -1] }), /address must be \[host, port\]/);
  assert.throws(() => new SyncManager({ address: 5 as never }), TypeError);
  assert.throws(() => new SyncManager({ authkey: 5 as never }), /authkey must be a Uint8Array or a string/);
  assert.throws(() => new BaseManager().register("", () => 1), /typeid must be a non-empty string/);
  assert.throws(() => new BaseManager().register("x", 5 as never), /callable must be a function or a class/);
  assert.throws(() => new SyncManager().dict(), /start\(\) or connect\(\) the manager first/);
  await assert.rejects(new SyncManager().connect(), /no address to connect to/);
  await assert.rejects(
    new SyncManager({ address: ["127.0.0.1", 1], authkey: KEY }).connect(),
    /127\.0\.0\.1:1/,
  );
  const queue = new ManagedQueue();
  const manager = new BaseManager({ address: ["127.0.0.1", 0], authkey: KEY });
  manager.register("get_queue", () => queue);
  const server = await manager.getServer();
  const serving = server.serveForever();
  const client = new BaseManager({ address: server.address, authkey: KEY });
  client.register("get_queue");
  await client.connect();
  const q = client.create("get_queue");
  await assert.rejects(
    q.no_such_method(),
    (error: Error) => error instanceof Error && /not in exposed/.test(error.message),
  );
  const unknown = client.create("nothing_registered");
  await assert.rejects(unknown.put(1), /KeyError/);
  await assert.rejects(q.put(() => 1), /cannot pickle|function/i);
  await client.shutdown();
  // The client's lease ends as its connections close: the server frees its objects (within a bound).
  for (const end = Date.now() + 10_000; server.numberOfObjects !== 0 && Date.now() < end;) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.equal(server.numberOfObjects, 0);
  server.shutdown();
  await serving;
  void RemoteError;
});

test("remote managers: a served Barrier breaks when a waiting client's connection closes, or on timeout", async () => {
  const barrier = new ManagedBarrier(3);
  const gone = new AbortController();
  const call = (signal: AbortSignal, connection: number) => ({ signal, client: 0, connection });
  const first = barrier.wait(call(new AbortController().signal, 1)) as Promise<number>;
  const second = barrier.wait(call(gone.signal, 2)) as Promise<number>;
  second.catch(() => {});
  assert.equal(barrier.__getattribute__(call(gone.signal, 3), "n_waiting"), 2);
  gone.abort(); // the second party's client died: it can never arrive
  const isBroken = (e: Error) => (e as { pythonType?: string }).pythonType === "threading.BrokenBarrierError";
  await assert.rejects(first, isBroken);
  await assert.rejects(second, isBroken);
  assert.throws(() => barrier.wait(call(new AbortController().signal, 4)), isBroken);
  barrier.reset();
  const t0 = performance.now();
  await assert.rejects(barrier.wait(call(new AbortController().signal, 5), 0.05) as Promise<number>, isBroken);
  assert.ok(performance.now() - t0 < 5_000);
  assert.equal(barrier.__getattribute__(call(gone.signal, 6), "broken"), true);
});

/** Waits until `check()` holds, at most `timeout` ms; whether it did. */
async function eventually(check: () => Promise<boolean>, timeout = 10_000): Promise<boolean> {
  for (const end = Date.now() + timeout; Date.now() < end;) {
    if (await check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return false;
}

/** One program of Condition, Barrier and Array calls through our SyncManager's methods; what it saw, in order. */
async function conditionBarrierArray(manager: SyncManager): Promise<unknown[]> {
  const seen: unknown[] = [];
  const a = manager.Array("i", [1, 2, 3]);
  await a.set(0, 5);
  seen.push(await a.length, await a.get(0), await a.get(-1), await a.slice(), await a.slice(undefined, undefined, -2));
  seen.push(await a.slice(1), await a.slice(-2, 3), await a.toArray());
  await assert.rejects(a.get(7), (e: Error) => e instanceof RangeError && /array index out of range/.test(e.message));
  await assert.rejects(a.set(1, 1.5), TypeError);
  // Garbage from the client side: an index that is no integer, a zero step.
  await assert.rejects(
    a.get("x" as never),
    (e: Error) => e instanceof TypeError && /array indices must be/.test(e.message),
  );
  await assert.rejects(a.slice(0, 3, 0), /slice step cannot be zero/);
  seen.push(await manager.Array("d", [1.5, -2]).toArray(), await manager.Array("q", 2).toArray());

  const b = manager.Barrier(2, { timeout: 300 });
  seen.push(await b.parties, await b.nWaiting, await b.broken);
  const t0 = performance.now();
  // A lone party: the barrier's own timeout breaks it, as Python's does.
  await assert.rejects(b.wait(), BrokenBarrierError);
  seen.push(performance.now() - t0 >= 250, await b.broken);
  await assert.rejects(b.wait(5_000), BrokenBarrierError);
  await b.reset();
  seen.push(await b.broken, (await Promise.all([b.wait(10_000), b.wait(10_000)])).sort());
  const waiting = b.wait(10_000);
  assert.ok(await eventually(async () => (await b.nWaiting) === 1));
  await b.abort();
  await assert.rejects(waiting, BrokenBarrierError);
  seen.push(await b.broken);

  const c = manager.Condition();
  assert.equal(await c.acquire(), true);
  seen.push(await c.wait(50));
  // While it holds the lock, another call of this program waits in the server on a connection of the pool:
  // the release still goes on the connection that holds it (a Python server owns an RLock by connection).
  const q = manager.Queue<string>();
  const pending = q.get({ timeout: 10_000 });
  await new Promise((resolve) => setTimeout(resolve, 50));
  await c.release();
  await q.put("after");
  seen.push(await pending);
  // The same for an RLock, re-entered meanwhile.
  const r = manager.RLock();
  assert.equal(await r.acquire(), true);
  const later = q.get({ timeout: 10_000 });
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(await r.acquire({ timeout: 1_000 }), true);
  await r.release();
  await r.release();
  await assert.rejects(r.release(), /cannot release un-acquired lock/);
  await q.put("later");
  seen.push(await later);
  // Another task sleeps in wait(); this one notifies until it wakes (a notify before it sleeps wakes nobody).
  const other = (async () => {
    await c.acquire();
    const notified = await c.wait(10_000);
    await c.release();
    return notified;
  })();
  let woke: boolean | undefined;
  void other.then((value) => (woke = value));
  assert.ok(
    await eventually(async () => {
      await c.acquire();
      await c.notify();
      await c.release();
      await new Promise((resolve) => setTimeout(resolve, 20));
      return woke !== undefined;
    }),
  );
  seen.push(woke);
  await assert.rejects(c.notify(), /cannot notify on un-acquired lock/);
  // Re-entrant, as its RLock.
  assert.equal(await c.acquire(), true);
  assert.equal(await c.acquire({ timeout: 1_000 }), true);
  await c.release();
  await c.release();
  await assert.rejects(c.release(), /un-acquired lock|release unlocked lock/);
  // waitFor: the predicate reads a remote value another task sets, then notifies all.
  const flag = manager.Value("i", 0);
  const waiters = [0, 1].map(async () => {
    await c.acquire();
    const result = await c.waitFor(async () => (await flag.get()) === 1 && "ready", 10_000);
    await c.release();
    return result;
  });
  await new Promise((resolve) => setTimeout(resolve, 200));
  await c.acquire();
  await flag.set(1);
  await c.notifyAll();
  await c.release();
  seen.push(await Promise.all(waiters));
  await c.acquire();
  seen.push(await c.waitFor(() => 0, 50));
  await c.release();
  return seen;
}

const CONDITION_BARRIER_ARRAY = [
  3,
  5,
  3,
  [5, 2, 3],
  [3, 5],
  [2, 3],
  [2, 3],
  [5, 2, 3],
  [1.5, -2],
  [0, 0],
  2,
  0,
  false,
  true,
  true,
  false,
  [0, 1],
  true,
  false,
  "after",
  "later",
  true,
  ["ready", "ready"],
  0,
];

test("remote managers: our SyncManager's Condition, Barrier and Array — the same against a Python server and ours", {
  timeout: 90_000,
}, async () => {
  try {
    for (const kind of ["python", "ts"]) {
      const { server, address } = kind === "python" ? await pythonServer() : await tsServer(["tcp", "127.0.0.1", "0"]);
      const manager = new SyncManager({ address, authkey: KEY });
      await manager.connect();
      assert.deepEqual(await conditionBarrierArray(manager), CONDITION_BARRIER_ARRAY, kind);
      await manager.shutdown();
      await shutDown(address);
      assert.equal((await server.exit()).code, 0, kind);
    }
  } finally {
    cleanUp();
  }
});

test("remote managers: Condition(lock) on a Lock or RLock of our server; bad arguments", {
  timeout: 60_000,
}, async () => {
  // A Python server rebuilds the lock's proxy with its own current_process().authkey (see the README's limits):
  // this runs on ours only.
  await using manager = new SyncManager({ address: ["127.0.0.1", 0], authkey: KEY });
  await manager.start();
  for (const lock of [manager.Lock(), manager.RLock()]) {
    const c = manager.Condition(lock);
    assert.equal(await c.acquire(), true);
    // The condition's lock is that lock.
    assert.equal(await lock.acquire({ timeout: 50 }), false);
    assert.equal(await c.wait(20), false);
    await c.notifyAll();
    await c.release();
    assert.equal(await lock.acquire({ timeout: 1_000 }), true);
    await lock.release();
  }
  await assert.rejects(manager.Condition(manager.Semaphore() as never).acquire(), /lock must be a Lock or an RLock/);
  assert.throws(() => manager.Condition(manager.dict() as never), TypeError);
  assert.throws(() => manager.Condition(manager.Condition()), TypeError);
  assert.throws(() => manager.Barrier(0), RangeError);
  assert.throws(() => manager.Barrier(1.5), RangeError);
  assert.throws(() => manager.Barrier(2, { timeout: -1 }), RangeError);
  assert.throws(() => manager.Barrier(2, { action: (() => {}) as never }), /takes no action/);
  assert.throws(() => manager.Array("i", -1), RangeError);
  await assert.rejects(manager.Array("z", [1]).get(0), /bad typecode/);
  const c = manager.Condition();
  assert.throws(() => c.wait(-1), RangeError);
  assert.throws(() => c.wait({ signal: new AbortController().signal }), /cannot be aborted/);
  await assert.rejects(c.notify(-1), RangeError);
  await assert.rejects(c.wait(10), /cannot wait on un-acquired lock/);
  assert.throws(() => manager.Barrier(2).wait(Number.NaN), RangeError);
});

/** A manager of `address` that reaches the server's get_dict too, connected. */
async function withDict(address: [string, number] | string) {
  class DictManager extends SyncManager {}
  DictManager.register("get_dict", undefined, { proxytype: "DictProxy" });
  const manager = new DictManager({ address, authkey: KEY });
  await manager.connect();
  return { manager, dict: manager.create<RemoteDictProxy<string, unknown>>("get_dict") };
}

/**
 * A client program of `mode` that prints "waiting" once its call is on the wire, killed then with SIGKILL;
 * mode "python-barrier" is a Python client waiting in the Barrier.
 */
async function killWaiting(address: [string, number] | string, mode: string): Promise<void> {
  const victim = mode === "python-barrier"
    ? program(["python3"], [join(fixtures, "remote_barrier_victim.py"), String((address as [string, number])[1]), KEY])
    : program(tsCommand(), [join(fixtures, "remote_managers_client.ts"), mode, ...addressArgs(address), KEY]);
  await victim.line("waiting");
  victim.child.kill("SIGKILL");
  assert.equal((await victim.exit()).signal, "SIGKILL");
}

test(
  "remote managers: a client SIGKILLed while it waits in a Barrier — ours breaks it at once, Python's at the timeout",
  { timeout: 90_000 },
  async () => {
    try {
      // ts: our server, a TypeScript victim; ts-python: our server, a Python victim; python: Python's server.
      for (const kind of ["ts", "ts-python", "python"]) {
        const { server, address } = kind === "python"
          ? await pythonServer()
          : await tsServer(["tcp", "127.0.0.1", "0"]);
        const { manager, dict } = await withDict(address);
        const barrier = manager.Barrier(3);
        await dict.set("barrier", barrier);
        // Ours: no timeout, the dead party breaks it. Python's server cannot tell (its thread stays in wait):
        // the live party's own timeout breaks it.
        const t0 = performance.now();
        const ours = barrier.wait(kind === "python" ? 1_500 : undefined);
        ours.catch(() => {});
        await killWaiting(address, kind === "ts-python" ? "python-barrier" : "barrier");
        await assert.rejects(ours, BrokenBarrierError, kind);
        if (kind === "python") assert.ok(performance.now() - t0 >= 1_400, kind);
        assert.equal(await barrier.broken, true, kind);
        // The server goes on: the barrier resets and trips with live parties.
        await barrier.reset();
        const small = manager.Barrier(2);
        assert.deepEqual((await Promise.all([small.wait(10_000), small.wait(10_000)])).sort(), [0, 1], kind);
        assert.equal(await barrier.broken, false, kind);
        await manager.shutdown();
        await shutDown(address);
        assert.equal((await server.exit()).code, 0, kind);
      }
    } finally {
      cleanUp();
    }
  },
);

test(
  "remote managers: a client SIGKILLed in a Condition — holding its lock, or asleep in wait(): the others go on",
  { timeout: 90_000 },
  async () => {
    try {
      const { server, address } = await tsServer(["tcp", "127.0.0.1", "0"]);
      const { manager, dict } = await withDict(address);
      const condition = manager.Condition();
      await dict.set("condition", condition);
      // Killed while it holds the lock: our server releases it.
      await killWaiting(address, "condition-hold");
      assert.equal(await condition.acquire({ timeout: 10_000 }), true);
      await condition.release();
      // Killed asleep in wait(): it is off the line, so notify(1) wakes the live sleeper, not the dead one.
      await killWaiting(address, "condition-wait");
      const live = (async () => {
        await condition.acquire();
        const notified = await condition.wait(20_000);
        await condition.release();
        return notified;
      })();
      await new Promise((resolve) => setTimeout(resolve, 200));
      await condition.acquire();
      await condition.notify(1);
      await condition.release();
      assert.equal(await live, true);
      await stopServer(server, address, manager);
      // Python's server is not run here: it cannot tell a killed client's thread from a live one, so its sleeper
      // may take the next notify, and whether a lock that client held looks held depends on thread idents reused.
    } finally {
      cleanUp();
    }
  },
);

test(
  "remote managers: a connected client's shutdown() leaves a server program serving, as CPython's connected manager",
  { timeout: 60_000 },
  async () => {
    try {
      // CPython: only start() gives a manager its shutdown(); a connected one has none (and `with m:` fails).
      const { server, address } = await tsServer(["tcp", "127.0.0.1", "0"]);
      const python = program(["python3"], [
        "-c",
        [
          "import sys",
          "from multiprocessing.managers import SyncManager",
          `m = SyncManager(address=('127.0.0.1', ${(address as [string, number])[1]}), authkey=b'${KEY}')`,
          "m.connect(); d = m.dict(a=1)",
          "print(hasattr(m, 'shutdown'), d['a'])",
          "try:\n    with m: pass\nexcept AttributeError as e: print('AttributeError', e)",
        ].join("\n"),
      ]);
      const done = await python.exit();
      assert.equal(done.code, 0, done.stderr);
      assert.deepEqual(done.stdout.trim().split("\n"), [
        "False 1",
        "AttributeError 'SyncManager' object has no attribute 'shutdown'",
      ]);
      // Ours: shutdown() (and `await using`) of a connected manager closes its connections, which gives its
      // objects back; the server goes on serving other clients.
      {
        await using first = new SyncManager({ address, authkey: KEY });
        await first.connect();
        assert.equal(await first.dict([["a", 1]]).get("a"), 1);
        await first.shutdown();
        await assert.rejects(first.numberOfObjects(), /shut down/);
      }
      const second = new SyncManager({ address, authkey: KEY });
      await second.connect();
      // The first client's dict went with its lease, Python's with its proxy's finalizer.
      assert.ok(await eventually(async () => (await second.numberOfObjects()) === 0));
      const d = second.dict([["b", 2]]);
      assert.equal(await d.get("b"), 2);
      await second.shutdown();
      assert.equal(server.child.exitCode, null);
      // Only a shutdown request stops it (what the manager that start()ed a server sends).
      await shutDown(address);
      assert.equal((await server.exit()).code, 0);
    } finally {
      cleanUp();
    }
  },
);

test(
  "remote managers: the server SIGKILLed while clients wait in a Barrier, a Condition and a Pool — all reject, nothing hangs",
  {
    timeout: 60_000,
  },
  async () => {
    try {
      const { server, address } = await tsServer(["tcp", "127.0.0.1", "0"]);
      const manager = new SyncManager({ address, authkey: KEY });
      await manager.connect();
      const barrier = manager.Barrier(2);
      const condition = manager.Condition();
      const pool = manager.Pool(1, { module: POOL_TASKS });
      const inPool = pool.apply(sleepy, [30_000, "slept"]);
      inPool.catch(() => {});
      const inBarrier = barrier.wait();
      await condition.acquire();
      const inCondition = condition.wait();
      inBarrier.catch(() => {});
      inCondition.catch(() => {});
      assert.ok(await eventually(async () => (await barrier.nWaiting) === 1));
      server.child.kill("SIGKILL");
      await assert.rejects(inBarrier, { name: "EOFError", message: /closed the connection during wait\(\)/ });
      await assert.rejects(inCondition, { name: "EOFError", message: /closed the connection during wait\(\)/ });
      await assert.rejects(inPool, { name: "EOFError", message: /closed the connection during apply\(\)/ });
      await assert.rejects(condition.release(), new RegExp(`${(address as [string, number])[1]}`));
      await assert.rejects(barrier.abort(), new RegExp(`${(address as [string, number])[1]}`));
      await manager.shutdown();
      assert.equal((await server.exit()).signal, "SIGKILL");
    } finally {
      cleanUp();
    }
  },
);

/** `[start, start + 1, …, stop - 1]`. */
function range(start: number, stop?: number): number[] {
  const [from, to] = stop === undefined ? [0, start] : [start, stop];
  return Array.from({ length: to - from }, (_, i) => from + i);
}

test(
  "remote managers: Pool — our server runs the library's Pool, a Python server runs Python functions, each from our client",
  {
    timeout: 90_000,
  },
  async () => {
    try {
      // Ours, its own OS process: the tasks are exported from a module the server's workers import.
      const ours = await tsServer(["tcp", "127.0.0.1", "0"]);
      const manager = new SyncManager({ address: ours.address, authkey: KEY });
      await manager.connect();
      const pool = manager.Pool(2, { module: POOL_TASKS });
      assert.equal(await pool.apply(inc, [1]), 2);
      assert.deepEqual(await pool.map(inc, [1, 2, 3]), [2, 3, 4]);
      assert.deepEqual(await pool.map(inc, range(10), 3), range(1, 11));
      assert.deepEqual(await pool.starmap(add, [[1, 2], [3, 4]]), [3, 7]);
      const ys: number[] = [];
      for await (const y of pool.imap(inc, [1, 2, 3])) ys.push(y);
      assert.deepEqual(ys, [2, 3, 4]);
      const unordered: number[] = [];
      for await (const y of pool.imapUnordered(sleepItem, [200, 0, 100])) unordered.push(y);
      assert.deepEqual(unordered.sort((a, b) => a - b), [0, 100, 200]);
      const later = pool.applyAsync(sleepy, [300, "late"]);
      assert.equal(await later.ready(), false);
      await assert.rejects(later.successful(), /result is not ready/);
      await assert.rejects(later.get(20), TimeoutError);
      assert.equal(await later.get(10_000), "late");
      assert.equal(await later.successful(), true);
      assert.equal(await later.wait(0), true);
      assert.deepEqual(await pool.mapAsync(inc, [5]).get(10_000), [6]);
      assert.deepEqual(await pool.starmapAsync(add, [[5, 5]]).get(10_000), [10]);
      // A task's error comes back as its class and message; the pool goes on.
      await assert.rejects(pool.map(failOnThree, [1, 2, 3]), { name: "TypeError", message: "three is not allowed" });
      const failed = pool.applyAsync(failOnThree, [3]);
      await assert.rejects(failed.get(10_000), /three is not allowed/);
      assert.equal(await failed.successful(), false);
      // A worker that dies mid-task: that task fails, the next one runs on a new worker.
      await assert.rejects(pool.apply(exitWith, [3]), /exit/i);
      assert.equal(await pool.apply(inc, [9]), 10);
      // What cannot run here: a Python function, a second module's function, a closure.
      await assert.rejects(pool.apply(new PyGlobal("math", "sqrt"), [4]), /cannot run the Python function math\.sqrt/);
      await assert.rejects(
        pool.apply(new PyGlobal(new URL("./fixtures/tasks.ts", import.meta.url).href, "mul"), [2, 3]),
        {
          name: "PythonException",
          message: /runs the functions of one module/,
        },
      );
      assert.throws(() => pool.apply((() => 1) as never), TypeError);
      // Garbage as another client could send it: no function, no items, bad arguments.
      await assert.rejects(pool.callMethod("apply", [5, []]), /task is a function exported from a module/);
      await assert.rejects(pool.callMethod("map", [new PyGlobal(POOL_TASKS.href, "inc"), 7]), /is not iterable/);
      await assert.rejects(pool.callMethod("apply", [new PyGlobal(POOL_TASKS.href, "inc"), [1], { x: 1 }]), TypeError);
      await assert.rejects(manager.create<RemotePoolProxy>("Pool", -1).close(), /at least 1/);
      await pool.close();
      await assert.rejects(pool.apply(inc, [1]), /Pool not running/);
      await pool.join();
      assert.throws(() => manager.Pool(0), RangeError);
      await stopServer(ours.server, ours.address, manager);

      // Python's SyncManager: the same proxy, Python functions named by module and name.
      const python = await pythonServer();
      const client = new SyncManager({ address: python.address, authkey: KEY });
      await client.connect();
      const theirs = client.Pool(2);
      const sqrt = new PyGlobal("math", "sqrt");
      assert.equal(await theirs.apply(new PyGlobal("builtins", "abs"), [-3]), 3);
      assert.deepEqual(await theirs.map(sqrt, [1, 4, 9]), [1, 2, 3]);
      assert.deepEqual(await theirs.starmap(new PyGlobal("operator", "mul"), [[2, 3], [4, 5]]), [6, 20]);
      const roots: number[] = [];
      for await (const y of theirs.imap(sqrt, [16, 25])) roots.push(y as number);
      assert.deepEqual(roots, [4, 5]);
      const sleeping = theirs.applyAsync(new PyGlobal("time", "sleep"), [0.3]);
      await assert.rejects(sleeping.get(20), TimeoutError);
      assert.equal(await sleeping.get(10_000), null);
      await assert.rejects(theirs.apply(sqrt, [-1]), {
        name: "PythonException",
        message: "ValueError: math domain error",
      });
      await theirs.terminate();
      await stopServer(python.server, python.address, client);
    } finally {
      cleanUp();
    }
  },
);

test(
  "remote managers: Pool — a Python client's task is refused by our server; a client SIGKILLed mid-task frees its pool",
  {
    timeout: 90_000,
  },
  async () => {
    try {
      const { server, address } = await tsServer(["tcp", "127.0.0.1", "0"]);
      const port = (address as [string, number])[1];
      const python = program(["python3"], [
        "-c",
        [
          "from multiprocessing.managers import SyncManager",
          `m = SyncManager(address=('127.0.0.1', ${port}), authkey=b'${KEY}'); m.connect()`,
          "p = m.Pool(1)",
          "try: p.map(abs, [1, -2])",
          "except TypeError as e: print('TypeError', e)",
          "p.terminate(); print('terminated')",
        ].join("\n"),
      ]);
      const done = await python.exit();
      assert.equal(done.code, 0, done.stderr);
      assert.deepEqual(done.stdout.trim().split("\n"), [
        "TypeError a TypeScript server cannot run the Python function builtins.abs",
        "terminated",
      ]);
      const manager = new SyncManager({ address, authkey: KEY });
      await manager.connect();
      assert.ok(await eventually(async () => (await manager.numberOfObjects()) === 0));
      await killWaiting(address, "pool");
      // The victim's pool went with its lease (the server terminates a pool it lets go); it serves a new one.
      assert.ok(await eventually(async () => (await manager.numberOfObjects()) === 0));
      const pool = manager.Pool(1, { module: POOL_TASKS });
      assert.equal(await pool.apply(inc, [1]), 2);
      await pool.terminate();
      await manager.shutdown();
      await shutDown(address);
      // Its 30 s task would hold the server program open, had its pool not been terminated.
      assert.equal((await server.exit(15_000)).code, 0);
    } finally {
      cleanUp();
    }
  },
);
