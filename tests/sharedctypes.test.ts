import { test } from "node:test";
import assert from "node:assert/strict";
import { Event, Lock, type Process, RawArray, RawValue, RLock, SharedArray, type Typecode, Value } from "../mod.ts";
import { checkNoLeaks } from "./leaks.ts";
import { starter } from "./starter.ts";

checkNoLeaks();

const start = starter("shared_memory");
const startHere = starter("sharedctypes");

async function join(p: Process): Promise<void> {
  await p.join(20_000);
  assert.equal(p.exitCode, 0, `${p.name} ended with exit code ${p.exitCode}`);
}

test("sharedctypes: every typecode stores its range and reads back what was written", { timeout: 10_000 }, () => {
  const cases: Array<[Typecode, unknown, unknown, unknown]> = [
    ["b", -128, 127, Int8Array],
    ["B", 0, 255, Uint8Array],
    ["h", -32768, 32767, Int16Array],
    ["H", 0, 65535, Uint16Array],
    ["i", -(2 ** 31), 2 ** 31 - 1, Int32Array],
    ["I", 0, 2 ** 32 - 1, Uint32Array],
    ["l", -(2 ** 31), 2 ** 31 - 1, Int32Array],
    ["L", 0, 2 ** 32 - 1, Uint32Array],
    ["q", -(2n ** 63n), 2n ** 63n - 1n, BigInt64Array],
    ["Q", 0n, 2n ** 64n - 1n, BigUint64Array],
    ["f", -1.5, 3.4028234663852886e38, Float32Array],
    ["d", -Number.MAX_VALUE, Number.MAX_VALUE, Float64Array],
    ["c", "\0", "\xff", Uint8Array],
  ];
  for (const [code, low, high, view] of cases) {
    const v = new Value(code, low as never);
    assert.equal(v.value, low, `Value('${code}') holds its lowest`);
    v.value = high as never;
    assert.equal(v.value, high, `Value('${code}') holds its highest`);
    assert.ok(v.view instanceof (view as typeof Int8Array), `Value('${code}').view`);
    const a = new SharedArray(code, [low, high] as never);
    assert.deepEqual(a.toArray(), [low, high], `SharedArray('${code}')`);
  }
  assert.equal(new Value("q", 5).value, 5n, "a safe integer is accepted for q and reads as bigint");
  assert.equal(new Value("c", 65).value, "A", "a byte is accepted for c");
  assert.equal(new Value("i").value, 0);
  assert.equal(new Value("q").value, 0n);
  assert.equal(new Value("f", NaN).value, NaN);
});

test(
  "sharedctypes: a number that does not fit wraps as C and ctypes store it; wrong types throw TypeError",
  { timeout: 10_000 },
  () => {
    // What Python 3.11 prints for mp.Value(code, x).value.
    const wraps: Array<[Typecode, unknown, unknown]> = [
      ["b", 300, 44],
      ["b", -129, 127],
      ["B", -1, 255],
      ["h", 40_000, -25536],
      ["H", -1, 65535],
      ["i", 2 ** 40, 0],
      ["i", 2 ** 31, -(2 ** 31)],
      ["I", -1, 4294967295],
      ["l", 2 ** 32 + 7, 7],
      ["L", -1, 4294967295],
      ["q", 2n ** 64n + 5n, 5n],
      ["q", 2n ** 63n, -(2n ** 63n)],
      ["Q", -1n, 2n ** 64n - 1n],
      ["Q", -1, 2n ** 64n - 1n],
      ["f", 0.1, 0.10000000149011612],
      ["f", 1e39, Infinity],
      ["d", 0.1, 0.1],
    ];
    for (const [code, input, stored] of wraps) {
      assert.equal(new Value(code, input as never).value, stored, `Value('${code}', ${input})`);
      const v = new Value(code);
      v.value = input as never;
      assert.equal(v.value, stored, `Value('${code}').value = ${input}`);
      const a = new SharedArray(code, [input] as never);
      assert.equal(a.get(0), stored, `SharedArray('${code}', [${input}])`);
      a.set(0, 0 as never);
      a.set(0, input as never);
      assert.equal(a.get(0), stored, `SharedArray('${code}').set(0, ${input})`);
    }
    assert.deepEqual(new SharedArray("b", [300, -129]).toArray(), [44, 127], "as Python's Array('b', [300, -129])[:]");
    assert.throws(
      () => new Value("c", 300),
      /300 does not fit typecode 'c' \(0 to 255\)/,
      "c is a byte, not a C integer",
    );
    assert.throws(() => new Value("c", "é€".slice(1)), /does not fit typecode 'c'/);
    assert.throws(() => new Value("i", 1.5), /typecode 'i' holds integers, got 1\.5/);
    assert.throws(() => new Value("i", "1" as never), /typecode 'i' holds integers, got "1"/);
    assert.throws(() => new Value("i", Infinity), TypeError);
    assert.throws(() => new Value("B", true as never), TypeError);
    assert.throws(() => new Value("q", 1.5 as never), TypeError);
    assert.throws(() => new Value("q", "1" as never), /holds 64-bit integers \(bigint\), got "1"/);
    assert.throws(() => new Value("d", 1n as never), /typecode 'd' holds numbers, got 1n/);
    assert.throws(() => new Value("c", "ab"), TypeError);
    assert.throws(() => new Value("x" as never, 0 as never), /unknown typecode "x"; use one of 'b' 'B'/);
    assert.throws(() => new SharedArray("u" as never, 3), TypeError);
    const v = new Value("h", 7);
    assert.throws(() => (v.value = "8" as never), TypeError);
    assert.equal(v.value, 7, "a refused write leaves the value as it was");
    assert.throws(() => new SharedArray("B", [1, "2"] as never), /item 1: typecode 'B' holds integers/);
  },
);

test(
  "sharedctypes: SharedArray sizes, indexes (negative from the end), iteration and errors",
  { timeout: 10_000 },
  () => {
    const a = new SharedArray("i", 4);
    assert.equal(a.length, 4);
    assert.deepEqual([...a], [0, 0, 0, 0]);
    a.set(0, 1);
    a.set(-1, 4);
    assert.deepEqual(a.toArray(), [1, 0, 0, 4]);
    assert.equal(a.get(-4), 1);
    assert.throws(() => a.get(4), /index 4 is out of range for length 4/);
    assert.throws(() => a.set(-5, 0), RangeError);
    assert.throws(() => a.get(1.5), TypeError);
    assert.throws(() => new SharedArray("i", -1), RangeError);
    assert.throws(() => new SharedArray("i", {} as never), TypeError);
    assert.equal(new SharedArray("d", 0).length, 0);
    assert.equal(String(new SharedArray("c", "hi")), `<SharedArray('c', ["h", "i"])>`);
    a.view[1] = 2;
    assert.equal(a.get(1), 2, "the typed-array view is the shared memory");
  },
);

test("sharedctypes: locks are RLocks by default, may be given or turned off", { timeout: 10_000 }, async () => {
  const v = new Value("d", 1.5);
  assert.ok(v.getLock() instanceof RLock);
  const lock = new Lock();
  assert.equal(new SharedArray("i", 2, { lock }).getLock(), lock);
  assert.throws(() => new RawValue("i", 1).getLock(), /created with \{ lock: false \} and has no lock/);
  assert.throws(() => new RawArray("i", 1).getLock(), /has no lock/);
  assert.throws(() => new Value("i", 1, { lock: 3 as never }), /lock must be true, false, or a Lock\/RLock/);
  assert.throws(() => new Value("i", 0, { lock: false }).getLock(), /has no lock/);
  {
    using _held = await v.getLock().guard();
    v.value *= 2;
  }
  assert.equal(v.value, 3);
  assert.equal(String(v), "<Value('d', 3)>");
});

test("sharedctypes: a Value, SharedArray and RawArray sent to a child share memory with the parent", {
  timeout: 20_000,
}, async () => {
  const big = new Value("q", 0n);
  const chars = new SharedArray("c", "abc");
  const doubles = new RawArray("d", 3);
  await join(start("writeTyped", big, chars, doubles));
  assert.equal(big.value, -(2n ** 62n));
  assert.deepEqual(chars.toArray(), ["z", "b", "c"]);
  assert.deepEqual(doubles.toArray(), [0, 0, 0.25]);
  const numbers = new SharedArray("i", [1, 2, 3, 0]);
  await join(start("sumInto", numbers));
  assert.equal(numbers.get(-1), 6);
});

test("sharedctypes: a Value's lock travels with it: the child holds the same lock", { timeout: 20_000 }, async () => {
  const counter = new Value("i", 0, { lock: new Lock() });
  const held = new Event();
  const done = new Event();
  const child = start("holdValueLock", counter, held, done);
  assert.equal(await held.wait(10_000), true);
  assert.equal(await counter.getLock().acquire({ block: false }), false, "the child holds the Value's lock");
  done.set();
  assert.equal(await counter.getLock().acquire(10_000), true);
  counter.getLock().release();
  await join(child);
});

test("sharedctypes: a synchronized read in a child waits for the process inside the lock (RLock or Lock)", {
  timeout: 60_000,
}, async () => {
  for (const lock of [true, new Lock()]) {
    const v = new Value("d", 0, { lock });
    const held = new Event();
    const seen = new RawArray("d", 1);
    const reader = startHere("readWhenHeld", v, held, seen);
    await join(startHere("holdMidUpdate", v, held, 200));
    await join(reader);
    assert.equal(seen.get(0), 2.5, "the read waited until the update was finished and the lock released");
  }
});

test("sharedctypes: the main thread's read waits (spinning) for a child's short critical section", {
  timeout: 20_000,
}, async () => {
  const v = new Value("d", 0);
  const held = new Event();
  const holder = startHere("holdMidUpdate", v, held, 150);
  assert.equal(await held.wait(10_000), true);
  assert.equal(v.value, 2.5, "the read waited for the child's release");
  await join(holder);
});

test("sharedctypes: the main thread gives up on a lock held too long with an error that says what to do", {
  timeout: 20_000,
}, async () => {
  const v = new SharedArray("q", 2);
  const held = new Event();
  const done = new Event();
  const counter = new Value("i", 0);
  const holder = start("holdValueLock", counter, held, done);
  assert.equal(await held.wait(10_000), true);
  const shared = new Value("i", 0, { lock: counter.getLock() });
  assert.throws(
    () => shared.value,
    /Value\.value: another process has held the lock for over 1000 ms.*await x\.getLock\(\)\.guard\(\)/,
  );
  assert.throws(() => new SharedArray("i", 1, { lock: counter.getLock() }).set(0, 1), /SharedArray\.set: another/);
  assert.equal(counter.getLock().locked(), true, "the failed access left the child's hold alone");
  done.set();
  await join(holder);
  assert.equal(shared.value, 0, "and once it is released the access goes through");
  assert.equal(v.get(0), 0n);
});

test("sharedctypes: the holder of a plain Lock accesses its Value inside the lock without deadlocking", {
  timeout: 10_000,
}, async () => {
  const v = new Value("i", 0, { lock: new Lock() });
  for (let i = 0; i < 3; i++) {
    using _held = await v.getLock().guard();
    v.value += 1;
  }
  assert.equal(v.value, 3);
  assert.equal(v.getLock().locked(), false);
});
