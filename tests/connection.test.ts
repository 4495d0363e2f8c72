import { test } from "node:test";
import assert from "node:assert/strict";
import { BufferTooShort, Connection, EOFError, Pipe } from "../mod.ts";
import { checkNoLeaks } from "./leaks.ts";
import { starter } from "./starter.ts";

checkNoLeaks();

const start = starter("connection");

test(
  "connection: a duplex pipe between main and a child, in order, recvSync in the child",
  { timeout: 20_000 },
  async () => {
    const [parent, child] = Pipe<string | null>();
    assert.equal(parent.readable && parent.writable, true);
    const p = start("echo", child);
    child.close();
    for (let i = 0; i < 200; i++) parent.send(`m${i}`);
    for (let i = 0; i < 200; i++) assert.equal(await parent.recv(), `echo m${i}`);
    await parent.send(null);
    await p.join(10_000);
    assert.equal(p.exitCode, 0);
    await assert.rejects(parent.recv(), EOFError, "the child closed its end");
    assert.throws(() => parent.recvSync(), /main thread must not block/);
  },
);

test(
  "connection: a one-way pipe between two children; end-of-file when the sender's child ends",
  { timeout: 20_000 },
  async () => {
    const [r, w] = Pipe<number>(false);
    assert.deepEqual([r.readable, r.writable, w.readable, w.writable], [true, false, false, true]);
    assert.throws(() => r.send(1), /can only receive/);
    assert.throws(() => w.recv(), /can only send/);
    const [reportIn, reportOut] = Pipe(false);
    const receiver = start("receiveUntilEnd", r, reportOut);
    const sender = start("sendNumbers", w, 1_000);
    // As in Python, the parent closes its own copies, or the pipe never ends.
    r.close();
    w.close();
    assert.deepEqual(await reportIn.recv(), [1_000, "EOFError"]);
    await Promise.all([receiver.join(10_000), sender.join(10_000)]);
    assert.deepEqual([receiver.exitCode, sender.exitCode], [0, 0]);
  },
);

test("connection: recv on a drained pipe whose other end is closed rejects with EOFError, after what was sent", {
  timeout: 5_000,
}, async () => {
  const [a, b] = Pipe();
  a.send("one");
  a.send("two");
  a.close();
  assert.equal(a.closed, true);
  assert.equal(await b.recv(), "one");
  assert.equal(await b.recv(), "two");
  await assert.rejects(b.recv(), EOFError);
  assert.equal(await b.poll(), true, "poll says recv would not wait");
  assert.throws(() => b.send("x"), /other end of the pipe is closed/);
});

test("connection: send and recv on a closed connection throw", { timeout: 5_000 }, () => {
  const [a] = Pipe();
  a.close();
  assert.throws(() => a.send(1), /send: the connection is closed/);
  assert.throws(() => a.recv(), /recv: the connection is closed/);
  assert.throws(() => new Connection(), /made by Pipe\(\)/);
});

test(
  "connection: poll waits up to its timeout, and sees a message as soon as it comes",
  { timeout: 5_000 },
  async () => {
    const [a, b] = Pipe();
    assert.equal(await b.poll(), false);
    let started = performance.now();
    assert.equal(await b.poll(100), false);
    const waited = performance.now() - started;
    assert.ok(waited >= 95 && waited < 1_000, `poll waited ${waited} ms`);
    setTimeout(() => a.send("now"), 30);
    started = performance.now();
    assert.equal(await b.poll(2_000), true);
    assert.ok(performance.now() - started < 1_000);
    assert.equal(await b.recv(), "now");
    assert.throws(() => b.poll(NaN), RangeError);
    assert.throws(() => b.poll(-1), RangeError);
  },
);

test("connection: sendBytes, recvBytes, recvBytesInto and BufferTooShort", { timeout: 20_000 }, async () => {
  const [a, b] = Pipe();
  const p = start("sendBytes", b, new Uint8Array([1, 2, 3, 4, 5, 6]));
  assert.deepEqual(await a.recvBytes(), new Uint8Array([1, 2, 3, 4, 5, 6]));
  const into = new Uint8Array(5);
  assert.equal(await a.recvBytesInto(into, 1), 3);
  assert.deepEqual(into, new Uint8Array([0, 3, 4, 5, 0]));
  await p.join(10_000);
  await b.sendBytes(new Uint16Array([1, 2, 3]));
  const error = await a.recvBytesInto(new Uint8Array(4)).catch((e) => e);
  assert.ok(error instanceof BufferTooShort);
  assert.deepEqual(error.bytes, new Uint8Array(new Uint16Array([1, 2, 3]).buffer), "the message is kept in the error");
  assert.throws(() => b.sendBytes(new Uint8Array(4), 2, 3), RangeError);
  await b.sendBytes(new Uint8Array(10));
  await assert.rejects(a.recvBytes(4), /10 bytes, more than maxLength 4/);
  assert.equal(a.closed, true, "as in Python, the connection is closed after a too long message");
});

test("connection: a message bigger than the pipe's buffer arrives whole", { timeout: 20_000 }, async () => {
  const [a, b] = Pipe<Float64Array>();
  const big = new Float64Array(600_000).map((_, i) => i / 3);
  const sending = a.send(big);
  const got = await b.recv();
  await sending;
  assert.equal(got.length, big.length);
  assert.ok(got.every((x, i) => x === i / 3));
});

test("connection: an object that cannot be copied fails at send, naming what", { timeout: 5_000 }, () => {
  const [a, b] = Pipe();
  // A plain function travels (by reference or as source); one without source text cannot.
  assert.throws(
    () => a.send({ callback: Math.max }),
    /Connection\.send\(obj\)\.callback: max is a native or bound function/,
  );
  assert.throws(() => a.send({ tag: Symbol("s") }), /Connection\.send\(obj\)\.tag is a symbol/);
  // A Connection inside a message travels (tests/transfer.test.ts); a class instance does not.
  assert.throws(() => a.send([b, new (class Secret {})()]), /Connection\.send\(obj\)\[1\] is an instance of Secret/);
});

test(
  "connection: a terminated child's end closes with it: end-of-file after what it sent, and a broken pipe",
  { timeout: 20_000 },
  async () => {
    const [a, b] = Pipe();
    const p = start("sendAndHang", b);
    b.close();
    assert.equal(await a.recv(), "last words");
    p.terminate();
    await p.join(10_000);
    const started = performance.now();
    assert.equal(await a.poll(5_000), true, "end-of-file is ready to read");
    await assert.rejects(a.recv(), EOFError);
    assert.ok(performance.now() - started < 2_000, "seen within the recheck interval, not at a timeout");
    assert.throws(() => a.send("anyone?"), /the other end of the pipe is closed \(broken pipe\)/);
    a.close();
  },
);

test("connection: (func, args) messages: an exported function travels by reference", { timeout: 20_000 }, async () => {
  const { mul } = await import("./fixtures/tasks.ts");
  const [a, b] = Pipe();
  const p = starter("tasks")("calculateOverPipe", b);
  b.close();
  await a.send([mul, [6, 7]]);
  await a.send([(x: number) => x + 1, [1]]);
  await a.send(null);
  assert.deepEqual([await a.recv(), await a.recv()], [["mul", 42, true], ["", 2, false]]);
  await assert.rejects(a.recv(), EOFError);
  await p.join(10_000);
  assert.equal(p.exitCode, 0);
});
