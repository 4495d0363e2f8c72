/**
 * CPython's `Doc/includes/mp_newtype.py`: types of your own registered on a
 * manager class, as `BaseManager.register` does: a class with its public
 * methods, the same class with an explicit `exposed` list, a generator
 * function whose proxy is iterated, and a function that returns a module-like
 * object of functions.
 *
 * Changes from Python: proxy calls are async (`await f1.f()`); `hasattr` is
 * `in`, `_exposed_` is `await proxy.exposedMethods()`; the generator's proxy
 * exposes `next` and is iterated with `for await`, where Python gives it a
 * `GeneratorProxy` class; `operator` is an object with the public functions of
 * Python's `operator` module, and `pow(2, 94)` is done on bigints. What the
 * server's methods print goes to the same standard output, in order, as in
 * Python.
 *
 * Run: deno run -A examples/mp_newtype.ts | bun examples/mp_newtype.ts | node examples/mp_newtype.ts
 */
import assert from "node:assert/strict";
import { type AutoProxy, SyncManager } from "../mod.ts";

export class Foo {
  f(): void {
    console.log("you called Foo.f()");
  }
  g(): void {
    console.log("you called Foo.g()");
  }
  _h(): void {
    console.log("you called Foo._h()");
  }
}

/** A simple generator function. */
export function* baz(): Generator<number> {
  for (let i = 0; i < 10; i++) yield i * i;
}

type Binary = (a: never, b: never) => unknown;

/** Python's `operator` module, its public functions by the same names. */
const operator: Record<string, (...args: never[]) => unknown> = {
  abs: (a: number) => Math.abs(a),
  add: (a: number, b: number) => a + b,
  and_: (a: number, b: number) => a & b,
  attrgetter: (name: string) => (o: Record<string, unknown>) => o[name],
  call: (f: (...args: unknown[]) => unknown, ...args: unknown[]) => f(...args),
  concat: (a: unknown[], b: unknown[]) => [...a, ...b],
  contains: (a: unknown[], b: unknown) => a.includes(b),
  countOf: (a: unknown[], b: unknown) => a.filter((x) => x === b).length,
  delitem: (a: unknown[], b: number) => void a.splice(b, 1),
  eq: (a: unknown, b: unknown) => a === b,
  floordiv: (a: number, b: number) => Math.floor(a / b),
  ge: (a: number, b: number) => a >= b,
  getitem: (a: unknown[], b: number) => a[b],
  gt: (a: number, b: number) => a > b,
  iadd: (a: number, b: number) => a + b,
  iand: (a: number, b: number) => a & b,
  iconcat: (a: unknown[], b: unknown[]) => (a.push(...b), a),
  ifloordiv: (a: number, b: number) => Math.floor(a / b),
  ilshift: (a: number, b: number) => a << b,
  imatmul: () => {
    throw new TypeError("no matrices here");
  },
  imod: (a: number, b: number) => a % b,
  imul: (a: number, b: number) => a * b,
  index: (a: number) => Math.trunc(a),
  indexOf: (a: unknown[], b: unknown) => a.indexOf(b),
  inv: (a: number) => ~a,
  invert: (a: number) => ~a,
  ior: (a: number, b: number) => a | b,
  ipow: (a: bigint, b: bigint) => a ** b,
  irshift: (a: number, b: number) => a >> b,
  is_: (a: unknown, b: unknown) => Object.is(a, b),
  is_not: (a: unknown, b: unknown) => !Object.is(a, b),
  isub: (a: number, b: number) => a - b,
  itemgetter: (i: number) => (a: unknown[]) => a[i],
  itruediv: (a: number, b: number) => a / b,
  ixor: (a: number, b: number) => a ^ b,
  le: (a: number, b: number) => a <= b,
  length_hint: (a: unknown[]) => a.length,
  lshift: (a: number, b: number) => a << b,
  lt: (a: number, b: number) => a < b,
  matmul: () => {
    throw new TypeError("no matrices here");
  },
  methodcaller: (name: string, ...args: unknown[]) => (o: Record<string, (...a: unknown[]) => unknown>) =>
    o[name](...args),
  mod: (a: number, b: number) => a % b,
  mul: (a: number, b: number) => a * b,
  ne: (a: unknown, b: unknown) => a !== b,
  neg: (a: number) => -a,
  not_: (a: unknown) => !a,
  or_: (a: number, b: number) => a | b,
  pos: (a: number) => +a,
  pow: ((a: bigint, b: bigint) => a ** b) as Binary,
  rshift: (a: number, b: number) => a >> b,
  setitem: (a: unknown[], b: number, c: unknown) => void (a[b] = c),
  sub: (a: number, b: number) => a - b,
  truediv: (a: number, b: number) => a / b,
  truth: (a: unknown) => !!a,
  xor: (a: number, b: number) => a ^ b,
};

/** Returns the operator "module". */
export function getOperatorModule(): typeof operator {
  return operator;
}

export class MyManager extends SyncManager {}
export interface MyManager {
  Foo1(): AutoProxy<Foo>;
  Foo2(): AutoProxy<Foo>;
  baz(): AutoProxy<Generator<number>> & AsyncIterable<number>;
  operator(): AutoProxy<{ add(a: number, b: number): number; pow(a: bigint, b: bigint): bigint }>;
}

// Register the Foo class; make `f()` and `g()` accessible via proxy.
MyManager.register("Foo1", Foo);
// Register the Foo class; make `g()` and `_h()` accessible via proxy.
MyManager.register("Foo2", Foo, { exposed: ["g", "_h"] });
// Register the generator function baz; its proxy calls `next` and is iterable.
MyManager.register("baz", baz, { exposed: ["next"] });
// Register getOperatorModule(); make its public functions accessible via proxy.
MyManager.register("operator", getOperatorModule);

async function test(): Promise<void> {
  await using manager = await new MyManager().start();

  console.log("-".repeat(20));

  const f1 = manager.Foo1();
  await f1.f();
  await f1.g();
  assert.equal("_h" in f1, false);
  assert.deepEqual((await f1.exposedMethods()).sort(), ["f", "g"]);

  console.log("-".repeat(20));

  const f2 = manager.Foo2();
  await f2.g();
  await (f2 as unknown as { _h(): Promise<void> })._h();
  assert.equal("f" in f2, false);
  assert.deepEqual((await f2.exposedMethods()).sort(), ["_h", "g"]);

  console.log("-".repeat(20));

  const it = manager.baz();
  const printed: string[] = [];
  for await (const i of it) printed.push(`<${i}>`);
  console.log(printed.join(" ") + " ");

  console.log("-".repeat(20));

  const op = manager.operator();
  console.log("op.add(23, 45) =", await op.add(23, 45));
  console.log("op.pow(2, 94) =", String(await op.pow(2n, 94n)));
  const exposed = await op.exposedMethods();
  console.log("op._exposed_ =", `(${exposed.map((name) => `'${name}'`).join(", ")})`);
}

if (import.meta.main) await test();
