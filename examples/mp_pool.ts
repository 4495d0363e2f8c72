/**
 * CPython's `Doc/includes/mp_pool.py` (Python 3.11): a pool of four workers
 * runs `(func, args)` tasks with `applyAsync`, `imap`, `imapUnordered` and
 * `map`, then shows how errors and timeouts come back. The tasks hold the
 * functions themselves, which travel by reference as Python's pickle sends
 * them.
 *
 * Ported line for line. What JavaScript does differently, and how the port
 * keeps Python's output:
 * - `1 / 0` is `Infinity` in JavaScript, not an error: `f` throws a
 *   `ZeroDivisionError` (exported, so the parent re-throws that very class,
 *   and `instanceof` holds as Python's `except ZeroDivisionError`).
 * - `sys.stdout.write` writes without a newline; `write` below gathers text
 *   into whole lines for `console.log`, the one output call all three
 *   runtimes order the same. The bytes are Python's.
 * - Timeouts are milliseconds: Python's `get(0.02)` is `get(20)`.
 * - `test()` is started, not awaited, at the top level (see the end).
 *
 * The tasks sleep at random, as Python's do, so which worker takes a task,
 * the order of the unordered results and the number of dots (timeouts) are
 * the scheduler's in both: `mp_pool.expected` (Python's output under the
 * spawn start method, whose workers are `SpawnPoolWorker-N` as ours are) is
 * compared as a set of lines, with `{n}` for the worker's number and `{...}`
 * for a run of dots.
 *
 * Run: deno run -A examples/mp_pool.ts | bun examples/mp_pool.ts | node examples/mp_pool.ts
 */
import { currentProcess, Pool, TimeoutError } from "../mod.ts";

type Func = (a: number, b: number) => Promise<number>;
type Task = [Func, [number, number]];

//
// Functions used by test code
//

/** Python's float division by zero. */
export class ZeroDivisionError extends Error {
  override name = "ZeroDivisionError";
}

export async function calculate(func: Func, args: [number, number]): Promise<string> {
  const result = await func(...args);
  return `${currentProcess().name} says that ${func.name}(${args.join(", ")}) = ${result}`;
}

export function calculatestar(args: Task): Promise<string> {
  return calculate(...args);
}

const sleep = (seconds: number) => new Promise((resolve) => setTimeout(resolve, seconds * 1000));

export async function mul(a: number, b: number): Promise<number> {
  await sleep(0.5 * Math.random());
  return a * b;
}

export async function plus(a: number, b: number): Promise<number> {
  await sleep(0.5 * Math.random());
  return a + b;
}

export function f(x: number): number {
  if (x - 5.0 === 0) throw new ZeroDivisionError("float division by zero");
  return 1.0 / (x - 5.0);
}

export function pow3(x: number): number {
  return x ** 3;
}

export function noop(_x: unknown): void {}

//
// Output as Python's print() and sys.stdout.write()
//

let line = "";

function write(text: string): void {
  const lines = (line + text).split("\n");
  line = lines.pop()!;
  for (const whole of lines) console.log(whole);
}

function print(...values: unknown[]): void {
  write(values.join(" ") + "\n");
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

//
// Test code
//

async function test(): Promise<void> {
  const PROCESSES = 4;
  print(`Creating pool with ${PROCESSES} processes\n`);

  await using pool = new Pool(PROCESSES);
  //
  // Tests
  //

  const TASKS: Task[] = [
    ...range(10).map((i): Task => [mul, [i, 7]]),
    ...range(10).map((i): Task => [plus, [i, 8]]),
  ];

  const results = TASKS.map((t) => pool.applyAsync(calculate, t));
  const imapIt = pool.imap(calculatestar, TASKS);
  const imapUnorderedIt = pool.imapUnordered(calculatestar, TASKS);

  print("Ordered results using pool.apply_async():");
  for (const r of results) print("\t", await r.get());
  print();

  print("Ordered results using pool.imap():");
  for await (const x of imapIt) print("\t", x);
  print();

  print("Unordered results using pool.imap_unordered():");
  for await (const x of imapUnorderedIt) print("\t", x);
  print();

  print("Ordered results using pool.map() --- will block till complete:");
  for (const x of await pool.map(calculatestar, TASKS)) print("\t", x);
  print();

  //
  // Test error handling
  //

  print("Testing error handling:");

  await expectZeroDivision(async () => print(await pool.apply(f, [5])), "pool.apply()");
  await expectZeroDivision(async () => print(await pool.map(f, range(10))), "pool.map()");
  await expectZeroDivision(async () => {
    const all = [];
    for await (const x of pool.imap(f, range(10))) all.push(x);
    print(all);
  }, "list(pool.imap())");

  const it = pool.imap(f, range(10));
  let i = 0;
  for (i = 0; i < 10; i++) {
    try {
      if ((await it.next()).done) break;
      if (i === 5) throw new Error("expected ZeroDivisionError");
    } catch (error) {
      if (!(error instanceof ZeroDivisionError)) throw error;
    }
  }

  if (i !== 10) throw new Error(`the loop ended at ${i}`);
  print("\tGot ZeroDivisionError as expected from IMapIterator.next()");
  print();

  //
  // Testing timeouts
  //

  write("Testing ApplyResult.get() with timeout: ");
  const res = pool.applyAsync(calculate, TASKS[0]);
  for (;;) {
    try {
      write(`\n\t${await res.get(20)}`);
      break;
    } catch (error) {
      if (!(error instanceof TimeoutError)) throw error;
      write(".");
    }
  }
  print();
  print();

  write("Testing IMapIterator.next() with timeout: ");
  const timed = pool.imap(calculatestar, TASKS);
  for (;;) {
    try {
      const next = await timed.next(20);
      if (next.done) break;
      write(`\n\t${next.value}`);
    } catch (error) {
      if (!(error instanceof TimeoutError)) throw error;
      write(".");
    }
  }
  print();
  print();
}

/** Python's `try: … except ZeroDivisionError: print(…) else: raise AssertionError(…)`. */
async function expectZeroDivision(run: () => Promise<void>, what: string): Promise<void> {
  try {
    await run();
  } catch (error) {
    if (!(error instanceof ZeroDivisionError)) throw error;
    print(`\tGot ZeroDivisionError as expected from ${what}`);
    return;
  }
  throw new Error("expected ZeroDivisionError");
}

if (import.meta.main) {
  // Not awaited at the top level: the parent re-throws a worker's error as its own class only from a module
  // that has finished evaluating (README, known limits), and ZeroDivisionError is this module's.
  void test();
}
