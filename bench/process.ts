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
 * (bench/process/library_target.ts), as users' modules do; and, in a row of
 * its own, with the JavaScript that JSR serves to Node and Bun users (the
 * packaging check's layout, built into a temporary folder): a parent that
 * imports it starts a target module that imports it.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import * as library from "../mod.ts";
import { getAllStartMethods, type Process, type StartMethod } from "../mod.ts";
import { buildLayout } from "../scripts/packaging.ts";
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

/** A target module (`undefined`: this module), and the copy of the library whose `Process` starts it. */
interface Target {
  module?: string;
  from?: Pick<typeof library, "getContext">;
}

/**
 * Every timed start's two figures, per target. The targets take turns, start
 * by start, so the machine's load and the warm-up fall on each alike: run one
 * module after the other, in one run on Node under load (load average 17),
 * the first took 1.6× as long as the second; taking turns, the two came out
 * within 10 %.
 */
async function ours(method: StartMethod, pause = 0, targets: Target[] = [{}]): Promise<Starts[]> {
  const classes = targets.map(({ from = library }) => from.getContext(method).Process);
  const starts: Starts[] = targets.map(() => ({ toFirst: [], toJoin: [] }));
  for (let i = 0; i < WARMUP + REPS; i++) {
    for (const [m, { module }] of targets.entries()) {
      const Process = classes[m];
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

/**
 * JSR's JavaScript twin of the library in a temporary folder, loaded here as
 * a second copy beside the TypeScript one, and a target module beside it
 * that imports it: what a Node or Bun program that uses the library from JSR
 * starts.
 */
async function javascriptBuild(): Promise<{ from: typeof library; target: string; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), "mp-bench-js-"));
  await buildLayout(join(dir, "layout"));
  const target = join(dir, "library_target.js");
  writeFileSync(target, `import "./layout/mod.js";\nexport ${signal.toString()}\n`);
  const from = await import(pathToFileURL(join(dir, "layout", "mod.js")).href);
  return { from, target: pathToFileURL(target).href, dir };
}

if (import.meta.main) {
  const raw = await rawStart();
  const rawOf = (name: string) => samplesOf(raw, name);
  const row = (name: string, ours: number[], against: Record<string, number[]>) =>
    printRow({ area: "process", name, unit: "ms", better: "lower", ours, against });
  const build = await javascriptBuild();
  const [empty, spawned, javascript] = await ours("spawn", 0, [
    { module: emptyTarget },
    { module: libraryTarget },
    { module: build.target, from: build.from },
  ]).finally(() => rmSync(build.dir, { recursive: true, force: true }));
  for (const [label, starts] of [["empty target module", empty], ["target imports the library", spawned]] as const) {
    row(`Process start → first message (spawn, ${label})`, starts.toFirst, {
      "raw worker": rawOf("start_to_first_message"),
    });
    row(`Process start → join (spawn, ${label})`, starts.toJoin, { "raw worker": rawOf("start_to_exit") });
  }
  const label = "target imports the library as JSR's JavaScript, which Node and Bun users load";
  row(`Process start → first message (spawn, ${label})`, javascript.toFirst, {
    "raw worker": rawOf("start_to_first_message"),
    "ours, TypeScript": spawned.toFirst,
  });
  row(`Process start → join (spawn, ${label})`, javascript.toJoin, {
    "raw worker": rawOf("start_to_exit"),
    "ours, TypeScript": spawned.toJoin,
  });
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
