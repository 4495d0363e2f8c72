// Raw worker start-up: constructor -> first message, and constructor -> the
// worker's own exit as seen by the parent.

import { spawnRaw } from "./worker.ts";
import { emit, nextMessage, type Report, report, sampled, WAIT_MS, withTimeout } from "./util.ts";

const REPS = 20;
// The first spawns pay one-off costs (loading the worker module graph from
// disk, JIT); a long-running program pays them once, so they are left out.
const WARMUP = 2;

export async function start(): Promise<Report> {
  const url = new URL("./start_worker.ts", import.meta.url);
  const toMessage: number[] = [];
  const toExit: number[] = [];
  let exitObservable = true;
  for (let i = 0; i < WARMUP + REPS; i++) {
    const t0 = performance.now();
    const w = spawnRaw(url);
    try {
      await nextMessage(w, "the worker's first message");
      const t1 = performance.now();
      if (w.exited) {
        await withTimeout(w.exited, WAIT_MS, "the worker to exit");
      } else {
        // Deno cannot report a worker's own exit; the closest a parent can
        // get is "it said its last word" followed by terminate().
        exitObservable = false;
        await w.terminate();
      }
      const t2 = performance.now();
      if (i >= WARMUP) {
        toMessage.push(t1 - t0);
        toExit.push(t2 - t0);
      }
    } finally {
      await w.terminate();
    }
  }
  return report("start", [
    sampled(
      "start_to_first_message",
      "ms",
      toMessage,
      `median of ${REPS}, new Worker() until its first message arrives`,
    ),
    sampled(
      "start_to_exit",
      "ms",
      toExit,
      exitObservable
        ? `median of ${REPS}, new Worker() until the parent sees the worker's exit`
        : `median of ${REPS}; this runtime has no worker exit event, so: until the last message + terminate()`,
    ),
  ]);
}

if (import.meta.main) emit(await start());
