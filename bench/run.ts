/**
 * `npm run bench`: every `bench/<area>.ts` on every runtime, then Python
 * 3.11's reference figures from `bench/python/`. Each area prints one JSON
 * line per comparison, `{ area, name, unit, better, ours, against }`, where
 * `against` was measured in the same run; this prints them as tables, with
 * the ratio of ours to each.
 */
import { readdirSync } from "node:fs";
import { execute, root, runtimes } from "../scripts/runtimes.ts";

interface Row {
  area: string;
  name: string;
  unit: string;
  better: "higher" | "lower";
  ours: number;
  against: Record<string, number>;
  notes?: string;
}

const areas = readdirSync(`${root}bench`).filter((f) => f.endsWith(".ts") && f !== "run.ts").sort();
const only = process.argv.slice(2);

function ratio(row: Row, other: number): string {
  // "× as good": above 1 means ours is better, whichever way the unit points.
  const r = row.better === "higher" ? row.ours / other : other / row.ours;
  return `${r.toFixed(2)}×`;
}

for (const runtime of runtimes) {
  console.log(`\n## ${runtime.name}\n`);
  console.log("| figure | unit | ours | against (ratio: ours is N× as good) |\n| --- | --- | --- | --- |");
  for (const area of areas) {
    if (only.length && !only.some((name) => area.startsWith(name))) continue;
    const outcome = await execute([...runtime.run, `bench/${area}`], { timeout: 5 * 60_000 });
    const rows = outcome.stdout.split("\n").filter((line) => line.startsWith("{")).map((line) =>
      JSON.parse(line) as Row
    );
    if (outcome.code !== 0 || rows.length === 0) {
      console.log(`| ${area} | | failed (exit ${outcome.code}) | ${outcome.stderr.trim().split("\n").at(-1) ?? ""} |`);
      continue;
    }
    for (const row of rows) {
      const against = Object.entries(row.against).map(([what, value]) => `${what}: ${value} (${ratio(row, value)})`)
        .join("; ");
      console.log(`| ${row.name} | ${row.unit} | ${row.ours} | ${against}${row.notes ? ` — ${row.notes}` : ""} |`);
    }
  }
}

console.log("\n## Python 3.11 (multiprocessing, spawn)\n");
for (const script of readdirSync(`${root}bench/python`).filter((f) => f.endsWith(".py") && !f.startsWith("_")).sort()) {
  if (only.length && !only.some((name) => script.startsWith(name))) continue;
  const outcome = await execute(["python3", `bench/python/${script}`], { timeout: 5 * 60_000 });
  const line = outcome.stdout.split("\n").find((l) => l.startsWith("{"));
  if (!line) {
    console.log(`- ${script}: failed (exit ${outcome.code})`);
    continue;
  }
  const report = JSON.parse(line) as { figures: { name: string; unit: string; value: number }[] };
  for (const figure of report.figures) console.log(`- ${figure.name}: ${figure.value} ${figure.unit}`);
}
