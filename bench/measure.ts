/**
 * How every bench figure is sampled and printed, in one place: a warm-up,
 * then `RUNS` timed runs, each kept as a sample. An area prints one JSON row
 * per comparison with `printRow`; bench/run.ts turns a row's samples into the
 * median, the slowest run and the spread. On this shared 2-core VM one run in
 * seven is often twice as slow as the rest (Pool.map swung 4.5M–24M items/s
 * from one map to the next, issue 14), so a median alone hides what a user
 * meets; the slowest run says it.
 *
 * @example
 * ```ts
 * import { printRow, sample } from "./measure.ts";
 * const ours = await sample(() => mapOnce());
 * printRow({ area: "pool", name: "map", unit: "items/s", better: "higher", ours, against: { python: [4.2e6] } });
 * ```
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import process from "node:process";

/** Timed runs per figure: the issue asks for the median of at least seven. */
export const RUNS = 7;
/** Unrecorded runs first, so the JIT and the caches are past their first pass. */
export const WARMUP = 1;

/** How many runs, and how many unrecorded first. */
export interface Runs {
  runs?: number;
  warmup?: number;
}

/**
 * Runs `measure` `warmup` times unrecorded, then `runs` times, and returns
 * what each timed run returned: one number, or one number per name.
 *
 * @example
 * ```ts
 * const rates = await sample(async () => 100_000 / (await timeMapSeconds()));
 * const both = await sample(async () => ({ first: 1.5, join: 3 })); // { first: [...], join: [...] }
 * ```
 */
export async function sample(measure: () => number | Promise<number>, options?: Runs): Promise<number[]>;
export async function sample<K extends string>(
  measure: () => Record<K, number> | Promise<Record<K, number>>,
  options?: Runs,
): Promise<Record<K, number[]>>;
export async function sample(
  measure: () => number | Record<string, number> | Promise<number | Record<string, number>>,
  { runs = RUNS, warmup = WARMUP }: Runs = {},
): Promise<number[] | Record<string, number[]>> {
  for (let i = 0; i < warmup; i++) await measure();
  const kept: (number | Record<string, number>)[] = [];
  for (let i = 0; i < runs; i++) kept.push(await measure());
  if (typeof kept[0] === "number") return kept as number[];
  const byName: Record<string, number[]> = {};
  for (const run of kept as Record<string, number>[]) {
    for (const [name, value] of Object.entries(run)) (byName[name] ??= []).push(value);
  }
  return byName;
}

/** The middle sample (the mean of the two middle ones for an even count). */
export function median(xs: readonly number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** What a row's samples say: the median, the slowest run, and (fastest − slowest) / median. */
export interface Summary {
  median: number;
  slowest: number;
  spread: number;
  runs: number;
}

/**
 * The median, the slowest run (the lowest rate or the longest time, by
 * `better`) and the spread of `samples`.
 *
 * @example
 * ```ts
 * summarize([3, 1, 2], "higher"); // { median: 2, slowest: 1, spread: 1, runs: 3 }
 * ```
 */
export function summarize(samples: readonly number[], better: "higher" | "lower"): Summary {
  const m = median(samples);
  const low = Math.min(...samples);
  const high = Math.max(...samples);
  return {
    median: m,
    slowest: better === "higher" ? low : high,
    spread: m ? (high - low) / m : 0,
    runs: samples.length,
  };
}

/** One comparison, as an area prints it and bench/run.ts reads it. */
export interface Row {
  area: string;
  name: string;
  unit: string;
  better: "higher" | "lower";
  /** The median of `samples` when there are samples; older rows give only this. */
  ours: number;
  against: Record<string, number>;
  notes?: string;
  /** Every timed run of ours. */
  samples?: number[];
  /** Every timed run of each comparison that has them, by the same names as `against`. */
  againstSamples?: Record<string, number[]>;
}

/** Four significant digits: enough to compare runs, few enough to read a JSON line. */
const keep = (x: number) => Number(x.toPrecision(4));

/**
 * Prints one row: each value may be the samples of its runs or a single
 * figure (a comparison that was measured once, or an ideal such as 2×).
 *
 * @example
 * ```ts
 * printRow({ area: "queues", name: "Queue worker→main", unit: "items/s", better: "higher",
 *   ours: [1e6, 9e5, 1.1e6], against: { "raw postMessage": [1.2e6, 1.3e6, 1.1e6] } });
 * ```
 */
export function printRow(row: {
  area: string;
  name: string;
  unit: string;
  better: "higher" | "lower";
  ours: number | number[];
  against: Record<string, number | number[]>;
  notes?: string;
}): void {
  const one = (v: number | number[]) => keep(typeof v === "number" ? v : median(v));
  const listed = Object.entries(row.against).filter(([, v]) => typeof v === "number" || v.length > 0);
  const out: Row = {
    area: row.area,
    name: row.name,
    unit: row.unit,
    better: row.better,
    ours: one(row.ours),
    against: Object.fromEntries(listed.map(([k, v]) => [k, one(v)])),
    ...(row.notes ? { notes: row.notes } : {}),
    ...(typeof row.ours === "number" ? {} : { samples: row.ours.map(keep) }),
    againstSamples: Object.fromEntries(
      listed.filter(([, v]) => typeof v !== "number").map(([k, v]) => [k, (v as number[]).map(keep)]),
    ),
  };
  console.log(JSON.stringify(out));
}

/** One figure of a bench/raw or bench/python report. */
export interface ReportFigure {
  name: string;
  unit: string;
  value: number;
  samples?: number[];
  note?: string;
}

/**
 * The samples of the figure `name` in a bench/raw or bench/python report (its
 * single value when it has none); empty when the report lacks it.
 *
 * @example
 * ```ts
 * const raw = samplesOf(await postmessage(), "postmessage_worker_to_main");
 * ```
 */
export function samplesOf(report: { figures: ReportFigure[] } | undefined, name: string): number[] {
  const figure = report?.figures.find((f) => f.name === name);
  if (!figure) return [];
  return figure.samples ?? [figure.value];
}

const pythonReports = new Map<string, { figures: ReportFigure[] } | undefined>();

/**
 * Where bench/run.ts keeps the Python reports of one `npm run bench`: Python's
 * figures do not depend on the runtime, so each script runs once, with the
 * first runtime, and every runtime compares with that run. Its twins of the
 * pool and the queues alone take ~3 min a run on this VM under load.
 */
export const PYTHON_REPORTS_DIR = "MP_BENCH_PYTHON_REPORTS";

function pythonReport(script: string): { figures: ReportFigure[] } | undefined {
  const dir = process.env[PYTHON_REPORTS_DIR];
  const kept = dir ? `${dir}/${script}.json` : undefined;
  if (kept && existsSync(kept)) return JSON.parse(readFileSync(kept, "utf8"));
  const run = spawnSync("python3", [new URL(`./python/${script}`, import.meta.url).pathname], {
    encoding: "utf8",
    timeout: 600_000,
  });
  const line = run.stdout?.split("\n").find((l) => l.startsWith("{"));
  if (!line) {
    console.error(`bench/python/${script} failed: ${run.stderr?.trim().split("\n").at(-1) ?? run.error}`);
    return undefined;
  }
  if (kept) writeFileSync(kept, line);
  return JSON.parse(line);
}

/**
 * Runs `bench/python/<script>` once (later calls reuse its report; within
 * `npm run bench`, once for all runtimes) and returns the samples of its
 * figure `name`; empty when python3 is missing or the script failed, so the
 * row still prints without it.
 *
 * @example
 * ```ts
 * const python = pythonSamples("queues.py", "queue_child_to_main");
 * ```
 */
export function pythonSamples(script: string, name: string): number[] {
  if (!pythonReports.has(script)) pythonReports.set(script, pythonReport(script));
  return samplesOf(pythonReports.get(script), name);
}
