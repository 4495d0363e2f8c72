// deno-lint-ignore-file no-explicit-any -- raw messages and runtime globals are untyped here
// Shared bookkeeping for the raw benches. Nothing here is runtime-specific;
// that all lives in worker.ts.

import { type RawWorker, runtimeLabel } from "./worker.ts";

export interface Figure {
  name: string;
  unit: string;
  /** The median of `samples`. */
  value: number;
  /** Each timed run's figure, so bench/run.ts can show the slowest and the spread beside the median. */
  samples?: number[];
  note?: string;
}

/** Timed runs per figure (bench/measure.ts's RUNS: the median of at least seven). */
export const REPS = 7;

export interface Report {
  bench: string;
  runtime: string;
  figures: Figure[];
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

// Enough digits to compare runs, few enough to keep the JSON line readable.
export function round(x: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

// A figure from its samples: the median as `value`, every run kept.
export function sampled(name: string, unit: string, samples: number[], note: string, digits = 3): Figure {
  return { name, unit, value: round(median(samples), digits), samples: samples.map((s) => round(s, digits)), note };
}

export function report(bench: string, figures: Figure[]): Report {
  return { bench, runtime: runtimeLabel(), figures };
}

export function emit(r: Report): void {
  console.log(JSON.stringify(r));
}

// Every wait in the benches goes through this, so a lost message shows up as
// an error naming what was awaited instead of a process that never exits.
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const fail = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([p, fail]).finally(() => clearTimeout(timer));
}

export const WAIT_MS = 30_000;

export function nextMessage(w: RawWorker, what: string, ms = WAIT_MS): Promise<any> {
  return withTimeout(
    new Promise((resolve) => {
      w.onMessage((data) => {
        w.onMessage(null);
        resolve(data);
      });
    }),
    ms,
    what,
  );
}

export async function terminateAll(workers: RawWorker[]): Promise<void> {
  await Promise.all(workers.map((w) => w.terminate()));
}
