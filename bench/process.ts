/**
 * Process start-up beside the raw platform worker, in the same run:
 * start() → the target's first signal, and start() → join() resolved.
 * The target signals through a shared cell (Atomics.notify), the cheapest
 * way a child can speak; the raw worker's figure is its first postMessage.
 */
import { Process } from "../mod.ts";
import { start as rawStart } from "./raw/start.ts";
import { median } from "./raw/util.ts";
import { waitCell } from "../src/wait.ts";

const REPS = 20;
const WARMUP = 2;

export function signal(cell: Int32Array): void {
  Atomics.store(cell, 0, 1);
  Atomics.notify(cell, 0);
}

async function ours(): Promise<{ toFirst: number; toJoin: number }> {
  const toFirst: number[] = [];
  const toJoin: number[] = [];
  for (let i = 0; i < WARMUP + REPS; i++) {
    const cell = new Int32Array(new SharedArrayBuffer(4));
    const t0 = performance.now();
    const p = new Process({ target: signal, args: [cell] });
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
  const mine = await ours();
  const rawOf = (name: string) => raw.figures.find((f) => f.name === name)!.value;
  const row = (name: string, value: number, against: number) =>
    console.log(JSON.stringify({
      area: "process",
      name,
      unit: "ms",
      better: "lower",
      ours: Math.round(value * 100) / 100,
      against: { "raw worker": against },
    }));
  row("Process start → first message", mine.toFirst, rawOf("start_to_first_message"));
  row("Process start → join", mine.toJoin, rawOf("start_to_exit"));
}
