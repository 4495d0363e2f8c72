/**
 * Every speed goal of the library, as data, with the figure it applies to:
 * issue 14's and the README's. bench/run.ts holds each row that `npm run
 * bench` prints against the goals that match it and lists the misses per
 * runtime. A goal is a bound on ours ÷ a comparison measured in the same run
 * (the unit's direction decides: "at least" for a rate, "at most" for a
 * time), or on ours itself when it has no `against` (a speed-up).
 *
 * @example
 * ```ts
 * import { goals, judge } from "./goals.ts";
 * for (const goal of goals) console.log(goal.says);
 * ```
 */
import { median, type Row, summarize } from "./measure.ts";

/** One goal and the rows it applies to. */
export interface Goal {
  /** The area file (bench/<area>.ts) whose rows it applies to. */
  area: string;
  /** Matches the row's `name`. */
  figure: RegExp;
  /** Matches the comparison's name in `against`; without it, ours itself is bounded by `factor`. */
  against?: RegExp;
  /** Rates: ours ≥ factor × theirs; times: ours ≤ factor × theirs. */
  factor: number;
  /** Which of our figures is held to it: the median (default) or the slowest run. */
  of?: "median" | "slowest";
  /** Only on these runtimes (all when absent). */
  runtimes?: string[];
  /** The goal in words, as the README and the issues state it. */
  says: string;
}

/** The goals: issue 14 (spawn, queue, map), issues 12/15/16 (sockets, remote managers, cluster), the README. */
export const goals: Goal[] = [
  { area: "process", figure: /^Process start/, against: /^raw worker$/, factor: 1.2, says: "spawn ≤ 1.2× raw worker" },
  {
    area: "queues",
    figure: /^Queue one-way worker→main/,
    against: /^raw postMessage$/,
    factor: 0.8,
    says: "Queue stream worker → main ≥ 0.8× raw postMessage",
  },
  {
    area: "queues",
    figure: /^Pipe round trip/,
    against: /^raw MessageChannel/,
    factor: 1.25,
    says: "Pipe round trip ≤ 1.25× raw MessageChannel",
  },
  {
    area: "pool",
    figure: /^map of 100k/,
    against: /^python/,
    factor: 5,
    of: "slowest",
    says: "Pool.map of 100,000 tiny items ≥ 5× Python Pool(2).map in its slowest run",
  },
  { area: "pool", figure: /^map of 100k/, against: /^piscina/, factor: 1, says: "Pool.map ≥ 1× piscina" },
  {
    area: "pool",
    figure: /^100k tiny tasks in flight/,
    against: /^piscina/,
    factor: 5,
    runtimes: ["node"],
    says: "100k tiny tasks in flight ≥ 5× piscina on Node",
  },
  {
    area: "pool",
    figure: /^one tiny task at a time/,
    against: /^piscina/,
    factor: 1,
    says: "one task at a time no slower than piscina",
  },
  { area: "pool", figure: /^CPU-bound speed-up/, factor: 1.8, says: "CPU-bound speed-up 1 → 2 workers ≥ 1.8×" },
  {
    area: "sockets",
    figure: /round trip/,
    against: /^raw/,
    factor: 1.2,
    says: "socket round trip ≤ 1.2× raw node:net",
  },
  { area: "sockets", figure: /one-way/, against: /^raw/, factor: 0.8, says: "socket one-way ≥ 0.8× raw node:net" },
  { area: "sockets", figure: /one-way/, against: /^python/, factor: 2, says: "socket one-way ≥ 2× Python" },
  {
    area: "remote_managers",
    figure: /^remote dict set\+get/,
    against: /^python/,
    factor: 2,
    says: "remote manager dict set+get ≥ 2× Python",
  },
  {
    area: "managers",
    figure: /^dict set\+get/,
    against: /^python/,
    factor: 3,
    says: "Manager dict set+get ≥ 3× Python",
  },
  {
    area: "synchronize",
    figure: /^Lock\.acquireSync \+ release, uncontended, in a worker/,
    against: /^raw Atomics/,
    factor: 0.5,
    says: "Lock acquireSync+release ≥ 0.5× raw Atomics lock",
  },
  {
    area: "cluster",
    figure: /tasks in flight/,
    against: /^BullMQ/,
    factor: 1,
    says: "cluster tasks in flight ≥ 1.0× BullMQ direct",
  },
  {
    area: "cluster",
    figure: /^map of 100,000/,
    against: /^BullMQ/,
    factor: 10,
    says: "cluster map ≥ 10× BullMQ direct",
  },
  {
    area: "cluster",
    figure: /^one task at a time/,
    against: /^BullMQ/,
    factor: 1.2,
    says: "cluster one task at a time ≤ 1.2× BullMQ latency",
  },
  {
    area: "cluster",
    figure: /^CPU-bound map/,
    factor: 1.8,
    says: "cluster CPU-bound map 1 → 2 host processes ≥ 1.8×",
  },
];

/** How one row stood against one goal. */
export interface Verdict {
  goal: Goal;
  met: boolean;
  /** What was compared, e.g. "slowest 3.9× python 3.11 Pool(2)". */
  measured: string;
}

/** Our figure the goal holds: the median, or the slowest run for a "slowest" goal. */
function ourFigure(goal: Goal, row: Row): number {
  if (goal.of !== "slowest") return row.samples ? median(row.samples) : row.ours;
  return row.samples ? summarize(row.samples, row.better).slowest : row.ours;
}

/**
 * The verdicts of every goal that applies to `row` on `runtime`; a goal whose
 * comparison is missing from the row says so and counts as missed.
 *
 * @example
 * ```ts
 * judge(row, "node").filter((v) => !v.met).forEach((v) => console.log(v.goal.says, v.measured));
 * ```
 */
export function judge(row: Row, runtime: string): Verdict[] {
  const verdicts: Verdict[] = [];
  for (const goal of goals) {
    if (goal.area !== row.area || !goal.figure.test(row.name)) continue;
    if (goal.runtimes && !goal.runtimes.includes(runtime)) continue;
    const ours = ourFigure(goal, row);
    const which = goal.of === "slowest" ? "slowest run" : "median";
    const meets = (x: number) => (row.better === "higher" ? x >= goal.factor : x <= goal.factor);
    if (!goal.against) {
      verdicts.push({ goal, met: meets(ours), measured: `${which} ${ours.toPrecision(3)}` });
      continue;
    }
    const name = Object.keys(row.against).find((k) => goal.against!.test(k));
    if (name === undefined) {
      verdicts.push({ goal, met: false, measured: "not measured (no such comparison in this run)" });
      continue;
    }
    const theirs = row.againstSamples?.[name] ? median(row.againstSamples[name]) : row.against[name];
    const ratio = ours / theirs;
    verdicts.push({ goal, met: meets(ratio), measured: `${which} ${ratio.toFixed(2)}× ${name}` });
  }
  return verdicts;
}
