import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { dumps, loads, PickleError, PyGlobal, PyObject, PyTuple, tuple } from "../src/python/pickle.ts";
import { checkNoLeaks } from "./leaks.ts";

checkNoLeaks();

const script = fileURLToPath(new URL("./fixtures/python_pickle.py", import.meta.url));

/** Runs the Python side with `request` as JSON on stdin; bounded by a timeout. */
function python(mode: "load" | "dump", request: unknown): unknown {
  const run = spawnSync("python3", [script, mode], {
    input: JSON.stringify(request),
    timeout: 30_000,
    encoding: "utf8",
  });
  if (run.status !== 0) throw new Error(`python3 exited ${run.status} (${run.signal}): ${run.stderr}`);
  return JSON.parse(run.stdout);
}

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const unhex = (s: string) => Uint8Array.from(s.match(/../g) ?? [], (x) => Number.parseInt(x, 16));

const keyError = new PyObject(new PyGlobal("builtins", "KeyError"), ["missing"]);
keyError.via = "reduce";
const namespace = new PyObject(new PyGlobal("types", "SimpleNamespace"), [], { a: 1 });

/** [TypeScript value, the Python expression of the same value]. */
const cases: [unknown, string][] = [
  [null, "None"],
  [true, "True"],
  [false, "False"],
  [0, "0"],
  [1, "1"],
  [255, "255"],
  [256, "256"],
  [65535, "65535"],
  [65536, "65536"],
  [-1, "-1"],
  [-256, "-256"],
  [2 ** 31 - 1, "2**31-1"],
  [-(2 ** 31), "-2**31"],
  [2 ** 31, "2**31"],
  [-(2 ** 31) - 1, "-2**31-1"],
  [Number.MAX_SAFE_INTEGER, "2**53-1"],
  [-Number.MAX_SAFE_INTEGER, "-(2**53-1)"],
  [2n ** 53n, "2**53"],
  [-(2n ** 64n), "-2**64"],
  [2n ** 63n - 1n, "2**63-1"],
  [-(2n ** 63n), "-2**63"],
  [3n * 2n ** 1000n, "3*2**1000"],
  [2n ** 2047n, "2**2047"],
  [1e20, "100000000000000000000"],
  [1.5, "1.5"],
  [-0, "-0.0"],
  [NaN, "float('nan')"],
  [Infinity, "float('inf')"],
  [-Infinity, "float('-inf')"],
  [5e-324, "5e-324"],
  [0.1, "0.1"],
  ["", "''"],
  ["a", "'a'"],
  ["héllo € 😀", "'héllo € 😀'"],
  ["\u0000\n\\", "'\\x00\\n\\\\'"],
  ["x".repeat(300), "'x'*300"],
  ["\ud800 lone", "'\\ud800 lone'"],
  [new Uint8Array(), "b''"],
  [new Uint8Array([0, 255]), "b'\\x00\\xff'"],
  [Uint8Array.from({ length: 300 }, (_, i) => i & 255), "bytes(i & 255 for i in range(300))"],
  [[], "[]"],
  [[[1], [2, [3]]], "[[1], [2, [3]]]"],
  [Array.from({ length: 2500 }, (_, i) => i), "list(range(2500))"],
  [tuple(), "()"],
  [tuple(1), "(1,)"],
  [tuple(1, 2), "(1, 2)"],
  [tuple(1, 2, 3), "(1, 2, 3)"],
  [tuple(1, 2, 3, 4), "(1, 2, 3, 4)"],
  [tuple(tuple(), [tuple("a")]), "((), [('a',)])"],
  [{}, "{}"],
  [{ a: 1, b: [2, "c"], d: { e: null } }, "{'a': 1, 'b': [2, 'c'], 'd': {'e': None}}"],
  [new Map<unknown, unknown>([[1, "a"], [tuple(1, 2), "b"], [null, 0]]), "{1: 'a', (1, 2): 'b', None: 0}"],
  [Object.fromEntries(Array.from({ length: 1500 }, (_, i) => [`k${i}`, i])), "{f'k{i}': i for i in range(1500)}"],
  [new Set(), "set()"],
  [new Set([1]), "{1}"],
  [new Set(Array.from({ length: 1200 }, (_, i) => i)), "set(range(1200))"],
  [new PyGlobal("builtins", "len"), "len"],
  [keyError, "KeyError('missing')"],
  [namespace, "SimpleNamespace(a=1)"],
  [[{ i: 1, s: "x" }, { i: 2, s: "x" }], "[{'i': 1, 's': 'x'}, {'i': 2, 's': 'x'}]"],
];

test("python pickle: Python's pickle.loads reads what dumps writes, protocols 2-5, and pickletools accepts it", {
  timeout: 60_000,
}, () => {
  for (const protocol of [2, 3, 4, 5] as const) {
    const request = cases.map(([value, expr]) => ({ expr, hex: hex(dumps(value, { protocol })) }));
    const results = python("load", request) as { same: boolean; valid: true | string; got: string }[];
    results.forEach((result, i) => {
      assert.equal(result.valid, true, `protocol ${protocol}, ${cases[i][1]}: pickletools says ${result.valid}`);
      assert.equal(result.same, true, `protocol ${protocol}, ${cases[i][1]}: Python read ${result.got.slice(0, 200)}`);
    });
  }
});

/** What loads gives for a Python value: the TypeScript value, except where the mapping is not one to one. */
function expected(value: unknown): unknown {
  if (
    typeof value === "bigint" && value >= -BigInt(Number.MAX_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
  ) {
    return Number(value);
  }
  if (value === 1e20) return 100000000000000000000n;
  if (value instanceof Map && [...value.keys()].every((k) => typeof k === "string")) return Object.fromEntries(value);
  return value;
}

test("python pickle: loads reads what Python's pickle.dumps writes, protocols 0-5", { timeout: 60_000 }, () => {
  const exprs = cases.map(([, expr]) => expr);
  for (const protocol of [0, 1, 2, 3, 4, 5]) {
    const pickles = python("dump", { exprs, protocol }) as string[];
    pickles.forEach((h, i) => {
      const got = loads(unhex(h));
      let want = expected(cases[i][0]);
      // Python writes KeyError by REDUCE and SimpleNamespace as REDUCE + BUILD: the PyObject says so.
      if (want === namespace) {
        const made = new PyObject(namespace.cls, [], { a: 1 });
        made.via = "reduce";
        want = made;
      }
      assert.deepStrictEqual(got, want, `protocol ${protocol}: ${exprs[i]}`);
    });
  }
});

test("python pickle: Python-only types come back as plain data (bytearray, frozenset, nested tuples in keys)", {
  timeout: 30_000,
}, () => {
  const exprs = ["bytearray(b'ab')", "frozenset({1})", "{(1, 'a'): [b'x']}", "[True, 1, 1.0]", "{'__proto__': 1}"];
  for (const protocol of [0, 2, 4, 5]) {
    const [ba, fs, dict, mixed, proto] = (python("dump", { exprs, protocol }) as string[]).map((h) => loads(unhex(h)));
    assert.deepStrictEqual(ba, new Uint8Array([97, 98]), `protocol ${protocol}`);
    assert.deepStrictEqual(fs, new Set([1]));
    assert.deepStrictEqual(dict, new Map([[tuple(1, "a"), [new Uint8Array([120])]]]));
    assert.deepStrictEqual(mixed, [true, 1, 1]);
    assert.equal(Object.getPrototypeOf(proto), Object.prototype, "a '__proto__' key is data, not a prototype");
    assert.deepStrictEqual(Object.keys(proto as object), ["__proto__"]);
  }
});

test("python pickle: shared and cyclic references survive both ways", { timeout: 30_000 }, () => {
  const shared = [1];
  const cyclic: unknown[] = [];
  cyclic.push(cyclic, shared, shared);
  const back = loads(dumps(cyclic)) as unknown[];
  assert.equal(back[0], back);
  assert.equal(back[1], back[2]);
  const objectCycle: Record<string, unknown> = { name: "x" };
  objectCycle.self = objectCycle;
  const got = loads(dumps(objectCycle)) as Record<string, unknown>;
  assert.equal(got.self, got);
  // Python builds the same shape from our bytes, and we from Python's.
  const [result] = python("load", [{ expr: "0", hex: hex(dumps(cyclic)) }]) as { got: string }[];
  assert.equal(result.got, "[[...], [1], [1]]");
  const exprs = ["(lambda l: (l.append(l), l)[1])([])", "(lambda d: (d.__setitem__(1, d), d)[1])({})"];
  for (const protocol of [0, 2, 4]) {
    const [list, dict] = (python("dump", { exprs, protocol }) as string[]).map((h) => loads(unhex(h)));
    assert.equal((list as unknown[])[0], list);
    assert.equal((dict as Map<number, unknown>).get(1), dict, "a cycle through a Map with an int key");
  }
});

test("python pickle: dumps refuses what Python has no plain type for, naming the type and the place", {
  timeout: 10_000,
}, () => {
  class Point {
    x = 1;
  }
  const hole: unknown[] = [1];
  hole[2] = 3;
  const selfTuple = tuple(1);
  const inner: unknown[] = [selfTuple];
  selfTuple.push(inner);
  let deep: unknown[] = [];
  for (let i = 0; i < 3000; i++) deep = [deep];
  const refusals: [unknown, RegExp][] = [
    [undefined, /cannot pickle undefined at value:/],
    [{ a: [1, new Date(0)] }, /cannot pickle a Date at value\.a\[1\]/],
    [() => 1, /cannot pickle a function/],
    [Symbol("s"), /cannot pickle a symbol/],
    [new Int16Array(2), /cannot pickle a Int16Array/],
    [new ArrayBuffer(2), /cannot pickle a ArrayBuffer/],
    [new Point(), /cannot pickle a Point at value/],
    [{ [Symbol("k")]: 1 }, /symbol keys/],
    [hole, /hole at value\[1\]/],
    [selfTuple, /contains itself/],
    [deep, /nested deeper than 2000/],
  ];
  for (const [value, message] of refusals) {
    assert.throws(
      () => dumps(value),
      (e: Error) => e instanceof PickleError && message.test(e.message),
      String(message),
    );
  }
  assert.throws(() => dumps(1, { protocol: 1 as 2 }), RangeError);
});

test("python pickle: dumps({ exact }) refuses what loads would give back as another type, and passes the rest", () => {
  for (
    const [value, why] of [
      [5n, /a bigint within 2\^53 at value exactly: loads\(\) would give back a number/],
      [[2 ** 60], /an integer number beyond 2\^53 at value\[0\] exactly: loads\(\) would give back a bigint/],
      [{ m: new Map([["a", 1]]) }, /a Map whose keys are all strings at value\.m exactly: .* a plain object/],
      [new Map(), /a Map whose keys are all strings/],
    ] as const
  ) {
    assert.doesNotThrow(() => dumps(value), "Python reads it");
    assert.throws(() => dumps(value, { exact: true }), (e: Error) => e instanceof PickleError && why.test(e.message));
  }
  for (
    const value of [
      2n ** 70n,
      -(2n ** 60n),
      2 ** 53 - 1,
      1.5,
      new Map<unknown, unknown>([[1, "a"], ["b", 2]]),
      tuple(1),
    ]
  ) {
    assert.deepStrictEqual(loads(dumps(value, { exact: true })), value);
  }
});

test("python pickle: truncated, lying and garbage input fails with PickleError, never reads past the end", {
  timeout: 30_000,
}, () => {
  const valid = dumps({ a: [1, 2.5, "text", new Uint8Array(40)], b: tuple(2n ** 80n) });
  for (let n = 0; n < valid.length; n++) {
    assert.throws(() => loads(valid.subarray(0, n)), PickleError, `a prefix of ${n} bytes`);
  }
  assert.throws(() => loads(new Uint8Array()), /truncated/);
  assert.throws(
    () => loads(Uint8Array.from([0x80, 4, 0x58, 0xff, 0xff, 0xff, 0x7f])),
    /truncated pickle: 2147483647 more/,
  );
  assert.throws(
    () => loads(Uint8Array.from([0x80, 4, 0x8e, 0, 0, 0, 0, 0, 0, 0, 0x7f, 0x2e])),
    /truncated|longer than/,
  );
  assert.throws(
    () => loads(Uint8Array.from([0x43, 5, 1, 2, 3, 4, 5, 0x2e]), { maxLength: 4 }),
    /5 bytes is longer than the limit of 4/,
  );
  assert.throws(() => loads(new TextEncoder().encode("GET / HTTP/1.1\r\n")), PickleError);
  assert.throws(() => loads(Uint8Array.from([0xff])), /unknown opcode 0xff/);
  assert.throws(() => loads(Uint8Array.from([0x68, 7, 0x2e])), /memo entry 7 was never stored/);
  assert.throws(() => loads(Uint8Array.from([0x61, 0x2e])), /stack underflow/);
  assert.throws(() => loads(Uint8Array.from([0x50, 0x31, 0x0a, 0x2e])), /persistent id/);
  // Random corruption of real pickles: a value or a PickleError, nothing else, and no hang.
  let seed = 7;
  const random = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  const samples = [valid, dumps(cases.map(([v]) => v), { protocol: 2 }), dumps(new Map([[1, new Set([tuple(1)])]]))];
  for (let k = 0; k < 3000; k++) {
    const bytes = samples[k % samples.length].slice();
    for (let flips = 1 + Math.floor(random() * 3); flips > 0; flips--) {
      bytes[Math.floor(random() * bytes.length)] = Math.floor(random() * 256);
    }
    try {
      loads(bytes);
    } catch (error) {
      assert.ok(error instanceof PickleError, `mutation ${k}: ${String(error)}`);
    }
  }
});

test(
  "python pickle: PyTuple is an array that stays a tuple, tuple() takes any number of items",
  { timeout: 5_000 },
  () => {
    // 10 000 arguments: within every engine's limit for a spread call, beyond what `push(...items)` would be wise with.
    const big = tuple(...Array.from({ length: 10_000 }, (_, i) => i));
    assert.equal(big.length, 10_000);
    const back = loads(dumps(big)) as PyTuple;
    assert.ok(back instanceof PyTuple);
    assert.equal(back[9_999], 9_999);
    assert.ok(!(loads(dumps([1])) instanceof PyTuple));
  },
);
