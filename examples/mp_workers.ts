/**
 * CPython's `Doc/includes/mp_workers.py`: four workers take `(func, args)`
 * tasks from one queue and put what they computed on another. The tasks hold
 * the functions themselves, which travel by reference as Python's pickle
 * sends them: each worker imported this module, so it finds `mul` and `plus`
 * here.
 *
 * Made deterministic, keeping its structure: Python's tasks sleep
 * `0.5 * random.random()` s; here (and in the Python copy that made
 * `mp_workers.expected`) each sleeps `0.05 * ((a * 3 + b) % 5)` s. Which of
 * the four workers takes a task, and so the order of the lines and the
 * number in each `Process-N`, is the scheduler's in both: the expected lines
 * are compared as a set, with `{n}` for that number.
 *
 * Run: deno run -A examples/mp_workers.ts | bun examples/mp_workers.ts | node examples/mp_workers.ts
 */
import { currentProcess, Process, Queue } from "../mod.ts";

type Task = [(a: number, b: number) => Promise<number>, [number, number]];

/** Run by the worker processes: takes tasks until 'STOP', as Python's `iter(input.get, 'STOP')`. */
export async function worker(input: Queue<Task | "STOP">, output: Queue<string>): Promise<void> {
  for (let task = await input.get(); task !== "STOP"; task = await input.get()) {
    const [func, args] = task;
    output.put(await calculate(func, args));
  }
}

/** Calculates one result, saying which process did. */
async function calculate(func: Task[0], args: Task[1]): Promise<string> {
  const result = await func(...args);
  return `${currentProcess().name} says that ${func.name}(${args.join(", ")}) = ${result}`;
}

/** A task's work takes a while: 0, 50, … 200 ms, the same in every run. */
function pause(a: number, b: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 50 * ((a * 3 + b) % 5)));
}

// Functions referenced by tasks.

export async function mul(a: number, b: number): Promise<number> {
  await pause(a, b);
  return a * b;
}

export async function plus(a: number, b: number): Promise<number> {
  await pause(a, b);
  return a + b;
}

async function test(): Promise<void> {
  const NUMBER_OF_PROCESSES = 4;
  const TASKS1: Task[] = Array.from({ length: 20 }, (_, i) => [mul, [i, 7]]);
  const TASKS2: Task[] = Array.from({ length: 10 }, (_, i) => [plus, [i, 8]]);

  // Create queues
  const taskQueue = new Queue<Task | "STOP">();
  const doneQueue = new Queue<string>();

  // Submit tasks
  for (const task of TASKS1) taskQueue.put(task);

  // Start worker processes
  for (let i = 0; i < NUMBER_OF_PROCESSES; i++) new Process({ target: worker, args: [taskQueue, doneQueue] }).start();

  // Get and print results
  console.log("Unordered results:");
  for (let i = 0; i < TASKS1.length; i++) console.log("\t", await doneQueue.get());

  // Add more tasks using `put()`
  for (const task of TASKS2) taskQueue.put(task);

  // Get and print some more results
  for (let i = 0; i < TASKS2.length; i++) console.log("\t", await doneQueue.get());

  // Tell child processes to stop
  for (let i = 0; i < NUMBER_OF_PROCESSES; i++) taskQueue.put("STOP");
}

if (import.meta.main) {
  await test();
}
