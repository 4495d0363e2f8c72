/**
 * This library's shared objects sent through a Queue or a Connection (not in
 * `args`): they arrive as working objects that share state with the original,
 * as Python's resource sharer sends a Connection, and beyond Python for a
 * Lock, Value, Event, Queue and SharedArrayBuffer.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { AbandonedLockError, EOFError, Event, Lock, Pipe, Process, Queue, Value } from "../mod.ts";
import type { Connection } from "../mod.ts";
import { checkNoLeaks } from "./leaks.ts";
import { starter } from "./starter.ts";

checkNoLeaks();

const start = starter("transfer");

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

test("transfer: a Lock, Value, Event and Queue through a Queue are the same objects in the child", {
  timeout: 20_000,
}, async () => {
  const q = new Queue();
  const report = new Queue();
  const go = new Queue();
  const lock = new Lock();
  const value = new Value("i", 5);
  const event = new Event();
  const back = new Queue<string>();
  assert.equal(await lock.acquire(), true);
  const p = start("useShared", q, report, go);
  await q.put({ lock, value, event, back });
  assert.deepEqual(await report.get({ timeout: 10_000 }), ["held by the parent", false]);
  lock.release();
  await go.put("release");
  assert.deepEqual(await report.get({ timeout: 10_000 }), ["taken after release", true]);
  assert.deepEqual(await report.get({ timeout: 10_000 }), ["value seen", 5]);
  assert.equal(await event.wait(10_000), true, "the child set the parent's event");
  assert.equal(value.value, 42, "the child wrote the parent's value");
  assert.equal(await back.get({ timeout: 10_000 }), "over the received queue");
  assert.equal(await lock.acquire({ timeout: 100 }), false, "the child holds the parent's lock");
  await go.put("done");
  await p.join(10_000);
  assert.equal(p.exitCode, 0);
  assert.equal(await lock.acquire({ timeout: 5_000 }), true, "released by the child");
  lock.release();
});

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
