// deno-lint-ignore-file no-explicit-any -- raw messages and runtime globals are untyped here
// Shared bookkeeping for the raw benches. Nothing here is runtime-specific;
// that all lives in worker.ts.

import { type RawWorker, runtimeLabel } from "./worker.ts";

export interface Figure {
  name: string;
  unit: string;
  value: number;
  note?: string;
}

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
