/**
 * `npm run bench [area…]`: every `bench/<area>.ts` (or those named) on every
 * runtime. Each area prints one JSON line per comparison (bench/measure.ts's
 * `Row`): ours and each comparison measured in the same run, with the samples
 * of their runs. This prints, as markdown that pastes into the README:
 * the machine, its load and the date; per runtime, each figure's median,
 * slowest run and spread beside its comparisons; one table of all runtimes;
 * every goal (bench/goals.ts) a figure misses, per runtime; and how long the
 * whole run took. Rows without samples (an older area file) print their one
 * figure.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { execute, root, runtimes } from "../scripts/runtimes.ts";
import { goals, judge, type Verdict } from "./goals.ts";
import { median, PYTHON_REPORTS_DIR, type Row, summarize } from "./measure.ts";

/** Modules of bench/ that are not areas. */
const support = new Set(["run.ts", "measure.ts", "goals.ts"]);
const areas = readdirSync(`${root}bench`).filter((f) => f.endsWith(".ts") && !support.has(f)).sort();
const only = process.argv.slice(2).filter((arg) => !arg.startsWith("--"));
const chosen = areas.filter((area) => !only.length || only.some((name) => area.startsWith(name)));
/** An area with 7 runs of each figure and its Python twin takes minutes on a loaded VM. */
const AREA_TIMEOUT = 15 * 60_000;

/** 1.23M, 456k, 78.9, 0.123: three significant digits. */
function show(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  if (a >= 1e6) return `${(x / 1e6).toPrecision(3)}M`;
  if (a >= 1e4) return `${(x / 1e3).toPrecision(3)}k`;
  return a >= 1000 ? String(Math.round(x)) : String(Number(x.toPrecision(3)));
}

/** "median (slowest s, spread p %, n runs)", or the single figure of a row without samples. */
function described(samples: number[] | undefined, single: number, better: Row["better"]): string {
  if (!samples?.length) return show(single);
  const s = summarize(samples, better);
  return `${show(s.median)} (slowest ${show(s.slowest)}, spread ${Math.round(s.spread * 100)} %, ${s.runs} runs)`;
}

function oursOf(row: Row): number {
  return row.samples?.length ? median(row.samples) : row.ours;
}

function theirsOf(row: Row, name: string): number {
  const samples = row.againstSamples?.[name];
  return samples?.length ? median(samples) : row.against[name];
}

/** ours ÷ theirs, the way the goals are stated (a time: above 1 is slower; a rate: above 1 is faster). */
function ratio(row: Row, name: string): string {
  return `${(oursOf(row) / theirsOf(row, name)).toFixed(2)}×`;
}

function verdictText(verdicts: Verdict[]): string {
  return verdicts.map((v) => (v.met ? `met: ${v.goal.says}` : `**missed**: ${v.goal.says} (${v.measured})`))
    .join("; ");
}

/** The first line of a command's output, or "?" when it cannot run. */
async function firstLine(command: string[]): Promise<string> {
  const outcome = await execute(command, { timeout: 30_000 }).catch(() => undefined);
  return (outcome?.stdout || outcome?.stderr || "?").trim().split("\n")[0];
}

async function machine(): Promise<string[]> {
  const cpuinfo = (() => {
    try {
      return readFileSync("/proc/cpuinfo", "utf8");
    } catch {
      return "";
    }
  })();
  const model = cpuinfo.match(/^model name\s*:\s*(.+)$/m)?.[1] ?? cpus()[0]?.model ?? "unknown CPU";
  const cores = cpuinfo ? cpuinfo.split("\n").filter((l) => l.startsWith("processor")).length : cpus().length;
  const versions = await Promise.all([
    ...runtimes.map((r) => firstLine([r.run[0], "--version"]).then((v) => `${r.name} ${v.replace(/^\D+/, "")}`)),
    firstLine(["python3", "--version"]),
  ]);
  return [`${cores} cores, ${model}`, versions.join(", ")];
}

const uptime = async () => (await firstLine(["uptime"])).replace(/^.*?(load average)/, "$1");

const began = performance.now();
const started = new Date();
const [hardware, versions] = await machine();
console.log(`# npm run bench${only.length ? ` ${only.join(" ")}` : ""}\n`);
console.log(`- Machine: ${hardware}`);
console.log(`- Runtimes: ${versions}`);
console.log(`- Started: ${started.toISOString()}, ${await uptime()}`);
console.log(
  "- Each figure: the median of its runs after a warm-up, the slowest run, and the spread ((fastest − slowest) ÷ median);" +
    " every comparison was measured in the same run (Python's twins once, with the first runtime, for all three)." +
    " Ratios are ours ÷ theirs.",
);

/** Every row of every runtime, for the combined table and the summary. */
const results: { runtime: string; area: string; rows: Row[]; failure?: string }[] = [];
const pythonReports = mkdtempSync(`${tmpdir()}/mp-bench-python-`);

for (const runtime of runtimes) {
  console.log(`\n## ${runtime.name}\n`);
  console.log(
    "| figure | unit | ours | against: median (slowest), ours ÷ theirs | goals |\n| --- | --- | --- | --- | --- |",
  );
  for (const area of chosen) {
    const t0 = performance.now();
    const outcome = await execute([...runtime.run, `bench/${area}`], {
      timeout: AREA_TIMEOUT,
      env: { [PYTHON_REPORTS_DIR]: pythonReports },
    });
    const seconds = ((performance.now() - t0) / 1000).toFixed(0);
    console.error(
      `${runtime.name} ${area}: ${seconds} s, exit ${outcome.code}${outcome.timedOut ? " (timed out)" : ""}`,
    );
    const rows = outcome.stdout.split("\n").filter((line) => line.startsWith("{")).map((line) =>
      JSON.parse(line) as Row
    );
    const name = area.replace(/\.ts$/, "");
    // An area that failed or hung after some rows still shows those rows.
    const failure = outcome.code === 0 && rows.length > 0
      ? undefined
      : `failed (exit ${outcome.code}${outcome.timedOut ? ", timed out" : ""}): ${
        outcome.stderr.trim().split("\n").at(-1) ?? ""
      }`;
    if (failure) console.log(`| ${area} | | ${failure} | | |`);
    results.push({ runtime: runtime.name, area: name, rows, failure });
    for (const row of rows) {
      const against = Object.keys(row.against).map((what) =>
        `${what}: ${described(row.againstSamples?.[what], row.against[what], row.better)}, ${ratio(row, what)}`
      ).join("; ");
      const ours = described(row.samples, row.ours, row.better);
      console.log(
        `| ${row.name} | ${row.unit} | ${ours} | ${against}${row.notes ? ` — ${row.notes}` : ""} | ${
          verdictText(judge(row, runtime.name))
        } |`,
      );
    }
  }
}

rmSync(pythonReports, { recursive: true, force: true });

// One table, a row per figure and a column per runtime, in the README's shape.
const names = runtimes.map((r) => r.name);
const figures = new Map<string, Map<string, Row>>();
// Area by area, so a figure only some runtimes have (forkserver) stays beside its area's others.
const byArea = chosen.map((area) => area.replace(/\.ts$/, ""));
for (const result of [...results].sort((a, b) => byArea.indexOf(a.area) - byArea.indexOf(b.area))) {
  for (const row of result.rows) {
    const key = `${row.area}: ${row.name}`;
    if (!figures.has(key)) figures.set(key, new Map());
    figures.get(key)!.set(result.runtime, row);
  }
}
console.log("\n## All runtimes\n");
console.log(
  "Each cell: ours, median (slowest run); then ours ÷ each comparison's median. Bold: a goal missed.\n",
);
console.log(`| figure | ${names.join(" | ")} |\n| --- |${names.map(() => " --- |").join("")}`);
for (const [key, byRuntime] of figures) {
  const any = [...byRuntime.values()][0];
  const cells = names.map((runtime) => {
    const row = byRuntime.get(runtime);
    if (!row) return "—";
    const s = row.samples?.length ? summarize(row.samples, row.better) : undefined;
    const ours = s ? `${show(s.median)} (${show(s.slowest)})` : show(row.ours);
    const ratios = Object.keys(row.against).map((what) => `${ratio(row, what)} ${what}`).join(", ");
    const missed = judge(row, runtime).some((v) => !v.met);
    return `${missed ? "**" : ""}${ours}${ratios ? `: ${ratios}` : ""}${missed ? "**" : ""}`;
  });
  console.log(`| ${key}, ${any.unit} | ${cells.join(" | ")} |`);
}

console.log("\n## Goals missed\n");
for (const runtime of names) {
  const mine = results.filter((r) => r.runtime === runtime);
  const lines: string[] = [];
  for (const result of mine) {
    if (result.failure) lines.push(`${result.area}: ${result.failure}`);
    const unmatched = goals.filter((g) =>
      g.area === result.area && (!g.runtimes || g.runtimes.includes(runtime)) &&
      !result.rows.some((row) => g.figure.test(row.name))
    );
    for (const goal of unmatched) lines.push(`${goal.says}: not measured (no row matches ${goal.figure})`);
    for (const row of result.rows) {
      for (const v of judge(row, runtime)) if (!v.met) lines.push(`${v.goal.says}: ${v.measured} (${row.name})`);
    }
  }
  console.log(`- **${runtime}**: ${lines.length ? "" : "none"}`);
  for (const line of lines) console.log(`  - ${line}`);
}

const minutes = (performance.now() - began) / 60_000;
console.log(`\nFinished ${new Date().toISOString()}, ${await uptime()}; the whole run took ${minutes.toFixed(1)} min.`);
