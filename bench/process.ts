/**
 * Process start-up beside the raw platform worker, in the same run:
 * start() → the target's first signal, and start() → join() resolved, with
 * each start method. The target signals through a shared cell
 * (Atomics.notify), the cheapest way a child can speak; the raw worker's
 * figure is its first postMessage. Starts follow each other back to back, so
 * a forkserver start takes the spare that the previous one left while that is
 * still loading the library; a second forkserver row leaves it time to load.
 * Spawn is measured with a target module that imports nothing
 * (bench/process/empty_target.ts) and with one that imports the library
 * (bench/process/library_target.ts), as users' modules do.
 */
import { getAllStartMethods, getContext, type Process, type StartMethod } from "../mod.ts";
import { start as rawStart } from "./raw/start.ts";
import { printRow, samplesOf } from "./measure.ts";
import { waitCell } from "../src/wait.ts";

const REPS = 20;
const WARMUP = 2;

export function signal(cell: Int32Array): void {
  Atomics.store(cell, 0, 1);
  Atomics.notify(cell, 0);
}

/** A pause between starts long enough for a spare to load the library, even on Node under load. */
const SPARE_READY_MS = 250;

const emptyTarget = new URL("./process/empty_target.ts", import.meta.url).href;
const libraryTarget = new URL("./process/library_target.ts", import.meta.url).href;

interface Starts {
  toFirst: number[];
  toJoin: number[];
}

/**
 * Every timed start's two figures, per target module (`undefined`: this
 * module). The modules take turns, start by start, so the machine's load and
 * the warm-up fall on each alike: run one module after the other, in one run
 * on Node under load (load average 17), the first took 1.6× as long as the
 * second; taking turns, the two came out within 10 %.
 */
async function ours(method: StartMethod, pause = 0, modules: (string | undefined)[] = [undefined]): Promise<Starts[]> {
  const { Process } = getContext(method);
  const starts: Starts[] = modules.map(() => ({ toFirst: [], toJoin: [] }));
  for (let i = 0; i < WARMUP + REPS; i++) {
    for (const [m, module] of modules.entries()) {
      await new Promise((resolve) => setTimeout(resolve, pause));
      const cell = new Int32Array(new SharedArrayBuffer(4));
      const t0 = performance.now();
      const p: Process = module
        ? new Process({ target: "signal", module, args: [cell] })
        : new Process({ target: signal, args: [cell] });
      p.start();
      if ((await waitCell(cell, 0, 0, { timeout: 30_000 })) === "timed-out") {
        throw new Error("no signal from the child");
      }
      const t1 = performance.now();
      await p.join(30_000);
      const t2 = performance.now();
      if (p.exitCode !== 0) throw new Error(`the child ended with ${p.exitCode}`);
      if (i >= WARMUP) {
        starts[m].toFirst.push(t1 - t0);
        starts[m].toJoin.push(t2 - t0);
      }
    }
  }
  return starts;
}

if (import.meta.main) {
  const raw = await rawStart();
  const rawOf = (name: string) => samplesOf(raw, name);
  const row = (name: string, ours: number[], against: Record<string, number[]>) =>
    printRow({ area: "process", name, unit: "ms", better: "lower", ours, against });
  const [empty, spawned] = await ours("spawn", 0, [emptyTarget, libraryTarget]);
  for (const [label, starts] of [["empty target module", empty], ["target imports the library", spawned]] as const) {
    row(`Process start → first message (spawn, ${label})`, starts.toFirst, {
      "raw worker": rawOf("start_to_first_message"),
    });
    row(`Process start → join (spawn, ${label})`, starts.toJoin, { "raw worker": rawOf("start_to_exit") });
  }
  // The forkserver rows compare with spawn of a target whose module imports the library.
  if (getAllStartMethods().includes("forkserver")) {
    for (const [label, pause] of [["back to back", 0], ["spare ready", SPARE_READY_MS]] as const) {
      const [warm] = await ours("forkserver", pause);
      row(`forkserver (${label}): Process start → first message`, warm.toFirst, {
        "raw worker": rawOf("start_to_first_message"),
        "ours, spawn": spawned.toFirst,
      });
      row(`forkserver (${label}): Process start → join`, warm.toJoin, {
        "raw worker": rawOf("start_to_exit"),
        "ours, spawn": spawned.toJoin,
      });
    }
  }
}
