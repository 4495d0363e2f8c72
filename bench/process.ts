/**
 * Process start-up beside the raw platform worker, in the same run:
 * start() → the target's first signal, and start() → join() resolved, with
 * each start method. The target signals through a shared cell
 * (Atomics.notify), the cheapest way a child can speak; the raw worker's
 * figure is its first postMessage. Starts follow each other back to back, so
 * a forkserver start takes the spare that the previous one left while that is
 * still loading the library; a second forkserver row leaves it time to load.
 */
import { getAllStartMethods, getContext, type Process, type StartMethod } from "../mod.ts";
import { start as rawStart } from "./raw/start.ts";
import { median } from "./raw/util.ts";
import { waitCell } from "../src/wait.ts";

const REPS = 20;
const WARMUP = 2;

export function signal(cell: Int32Array): void {
  Atomics.store(cell, 0, 1);
  Atomics.notify(cell, 0);
}

/** A pause between starts long enough for a spare to load the library, even on Node under load. */
const SPARE_READY_MS = 250;

async function ours(method: StartMethod, pause = 0): Promise<{ toFirst: number; toJoin: number }> {
  const { Process } = getContext(method);
  const toFirst: number[] = [];
  const toJoin: number[] = [];
  for (let i = 0; i < WARMUP + REPS; i++) {
    await new Promise((resolve) => setTimeout(resolve, pause));
    const cell = new Int32Array(new SharedArrayBuffer(4));
    const t0 = performance.now();
    const p: Process = new Process({ target: signal, args: [cell] });
    p.start();
    if ((await waitCell(cell, 0, 0, { timeout: 30_000 })) === "timed-out") throw new Error("no signal from the child");
    const t1 = performance.now();
    await p.join(30_000);
    const t2 = performance.now();
    if (p.exitCode !== 0) throw new Error(`the child ended with ${p.exitCode}`);
    if (i >= WARMUP) {
      toFirst.push(t1 - t0);
      toJoin.push(t2 - t0);
    }
  }
  return { toFirst: median(toFirst), toJoin: median(toJoin) };
}

if (import.meta.main) {
  const raw = await rawStart();
  const rawOf = (name: string) => raw.figures.find((f) => f.name === name)!.value;
  const round = (ms: number) => Math.round(ms * 100) / 100;
  const row = (name: string, value: number, against: Record<string, number>) =>
    console.log(JSON.stringify({ area: "process", name, unit: "ms", better: "lower", ours: round(value), against }));
  const spawned = await ours("spawn");
  row("Process start → first message", spawned.toFirst, { "raw worker": rawOf("start_to_first_message") });
  row("Process start → join", spawned.toJoin, { "raw worker": rawOf("start_to_exit") });
  if (getAllStartMethods().includes("forkserver")) {
    for (const [label, pause] of [["back to back", 0], ["spare ready", SPARE_READY_MS]] as const) {
      const warm = await ours("forkserver", pause);
      row(`forkserver (${label}): Process start → first message`, warm.toFirst, {
        "raw worker": rawOf("start_to_first_message"),
        "ours, spawn": round(spawned.toFirst),
      });
      row(`forkserver (${label}): Process start → join`, warm.toJoin, {
        "raw worker": rawOf("start_to_exit"),
        "ours, spawn": round(spawned.toJoin),
      });
    }
  }
}
