/**
 * `npm run soak`: the long runs that show nothing leaks, on each runtime:
 * 100,000 process cycles, 10 million queue items, 100,000 SharedMemory
 * create/unlink and 10,000 terminated manager clients. Each prints its
 * count, time and resident memory (RSS, the whole program with its worker
 * threads) after a warm-up and at the end, and fails when memory is not flat.
 *
 * Flat means: the RSS at the end is at most `BOUND_MIB` above the RSS after
 * the warm-up (the first 5% of the run, which loads code and fills caches).
 * A leak of one 256 KiB answer block per killed client would be 2.4 GiB over
 * the run; one 1 KiB record per process cycle, 98 MiB.
 *
 *   npm run soak                        every case on every runtime
 *   npm run soak -- --runtime node      one runtime
 *   npm run soak -- --case shm --scale 0.1   one case, a tenth of the count
 *   npm run soak -- --verbose           echo each case's progress as it runs
 *
 * The same file is the program each runtime runs (with `--run CASE COUNT`)
 * and the module its children import for their targets.
 */
import process from "node:process";
import { Event, Manager, Process, Queue, SharedMemory } from "../mod.ts";
import type { ListProxy } from "../mod.ts";

/** How much RSS may grow between the warm-up and the end, in MiB. */
const BOUND_MIB = 64;
const WARM_UP = 0.05;
/** Processes in flight at once in the process and manager cases. */
const IN_FLIGHT = 4;

const cases: Record<string, number> = {
  processes: 100_000,
  queue: 10_000_000,
  shm: 100_000,
  killed: 10_000,
};

// ---- Targets of the children -------------------------------------------------

/** A process cycle's target: nothing, so the cycle measures start, run and join. */
export function idle(): void {}

/** Puts `count` numbers, blocking this worker while the ring is full. */
export function produce(queue: Queue<number>, count: number): void {
  for (let i = 0; i < count; i++) queue.putSync(i);
}

/** A manager client: one call, then it waits to be terminated. */
export async function callAndHang(list: ListProxy<number>, called: Event): Promise<void> {
  await list.size();
  called.set();
  await new Promise((resolve) => setTimeout(resolve, 600_000));
}

// ---- One case in this runtime -----------------------------------------------

function rssMiB(): number {
  const bun = (globalThis as { Bun?: { gc(force: boolean): void } }).Bun;
  if (bun) bun.gc(true);
  else (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage.rss() / 2 ** 20;
}

const module = import.meta.url;

/** Runs `total` steps of `step`, `inFlight` at a time; `mark` is called once when the warm-up is done. */
async function repeat(
  total: number,
  inFlight: number,
  step: (i: number) => Promise<void> | void,
  mark: () => void,
): Promise<void> {
  const warm = Math.floor(total * WARM_UP);
  let next = 0;
  let done = 0;
  const lane = async () => {
    while (next < total) {
      const i = next++;
      await step(i);
      if (++done === warm) mark();
      // Progress on stderr, so a long run shows it is moving (the driver echoes it).
      if (total >= 1_000 && done % Math.floor(total / 10) === 0) console.error(`${done}/${total}`);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, lane));
}

async function runCase(name: string, total: number): Promise<{ before: number; after: number }> {
  let before = 0;
  const mark = () => void (before = rssMiB());
  if (name === "processes") {
    await repeat(total, IN_FLIGHT, async () => {
      const p = new Process({ target: idle, module });
      p.start();
      await p.join(60_000);
      if (p.exitCode !== 0) throw new Error(`a process cycle ended with ${p.exitCode}`);
    }, mark);
  } else if (name === "shm") {
    await repeat(total, 1, (i) => {
      // Sizes cycle from 1 byte to 1 MiB, so extents split and merge all the time.
      const shm = new SharedMemory({ create: true, size: 1 + ((i * 7919) % (1 << 20)) });
      shm.buf[shm.size - 1] = 1;
      shm.close();
      shm.unlink();
    }, mark);
  } else if (name === "queue") {
    const queue = new Queue<number>();
    const producers = 2;
    const each = Math.floor(total / producers);
    const started = Array.from({ length: producers }, () => {
      const p = new Process({ target: produce, args: [queue, each], module });
      p.start();
      return p;
    });
    let sum = 0;
    const warm = Math.floor(each * producers * WARM_UP);
    for (let got = 0; got < each * producers; got++) {
      sum += await queue.get({ timeout: 60_000 });
      if (got === warm) mark();
    }
    for (const p of started) await p.join(60_000);
    const expected = producers * (each * (each - 1) / 2);
    if (sum !== expected) throw new Error(`the queue lost items: sum ${sum}, expected ${expected}`);
  } else if (name === "killed") {
    await using manager = await Manager();
    const list = manager.list<number>([1]);
    await repeat(total, IN_FLIGHT, async () => {
      const called = new Event();
      const p = new Process({ target: callAndHang, args: [list, called], module });
      p.start();
      if (!await called.wait(60_000)) throw new Error("a manager client did not make its call");
      p.terminate();
      await p.join(60_000);
    }, mark);
    if (await list.size() !== 1) throw new Error("the manager's list changed");
    const check = new SharedMemory({ create: true, size: 1 << 20 });
    check.close();
    check.unlink();
  } else {
    throw new Error(`no soak case named ${name}; the cases: ${Object.keys(cases).join(", ")}`);
  }
  return { before, after: rssMiB() };
}

// ---- The driver ---------------------------------------------------------------

function option(name: string): string | undefined {
  const at = process.argv.indexOf(`--${name}`);
  return at === -1 ? undefined : process.argv[at + 1];
}

if (import.meta.main) {
  const run = option("run");
  if (run) {
    const total = Number(process.argv[process.argv.indexOf("--run") + 2]);
    const started = performance.now();
    const { before, after } = await runCase(run, total);
    const seconds = (performance.now() - started) / 1000;
    console.log(JSON.stringify({ case: run, total, seconds, before, after }));
    process.exit(0);
  }
  const { execute, runtimes } = await import("./runtimes.ts");
  const scale = Number(option("scale") ?? 1);
  const only = option("case");
  const runtime = option("runtime");
  const chosen = runtimes.filter((r) => runtime === undefined || r.name === runtime);
  const flags: Record<string, string[]> = { node: ["--expose-gc"], deno: ["--v8-flags=--expose-gc"], bun: [] };
  let failed = 0;
  for (const { name: runtimeName, run: command } of chosen) {
    for (const [name, count] of Object.entries(cases)) {
      if (only !== undefined && only !== name) continue;
      const total = Math.max(1, Math.round(count * scale));
      const [file, ...rest] = command;
      const outcome = await execute(
        [file, ...rest, ...flags[runtimeName], "scripts/soak.ts", "--run", name, String(total)],
        { timeout: 4 * 60 * 60_000, echo: option("verbose") !== undefined },
      );
      const line = outcome.stdout.trim().split("\n").at(-1) ?? "";
      let report: { seconds: number; before: number; after: number } | undefined;
      try {
        report = JSON.parse(line);
      } catch {
        report = undefined;
      }
      if (outcome.code !== 0 || !report) {
        failed++;
        console.log(`${runtimeName} ${name} ${total}: FAILED (exit ${outcome.code})\n${outcome.stderr.slice(-2000)}`);
        continue;
      }
      const grown = report.after - report.before;
      const flat = grown <= BOUND_MIB;
      if (!flat) failed++;
      console.log(
        `${runtimeName} ${name} ${total.toLocaleString("en")}: ${report.seconds.toFixed(1)} s, ` +
          `RSS ${report.before.toFixed(0)} MiB after warm-up, ${report.after.toFixed(0)} MiB at the end ` +
          `(${grown >= 0 ? "+" : ""}${grown.toFixed(0)} MiB) ${flat ? "flat" : `NOT FLAT (bound +${BOUND_MIB} MiB)`}`,
      );
    }
  }
  process.exit(failed ? 1 : 0);
}
