/**
 * `npm test`: the one conformance suite under Deno, Bun and Node 24, then
 * every example on every runtime against what it must print. Prints each
 * runtime's summary, and last, alone on a line, `N passed, N failed` over
 * everything. Exits 1 if anything failed, or if a runner ended without a
 * summary (a crash or a hang counts as a failure, never as zero tests).
 */
import { readdirSync } from "node:fs";
import { compare, examples } from "./examples.ts";
import { packagingChecks } from "./packaging.ts";
import { publishChecks } from "./publish.ts";
import { bin, execute, type Outcome, root, runtimes, type Tally } from "./runtimes.ts";

const RUNNER_TIMEOUT = 8 * 60_000;
const EXAMPLE_TIMEOUT = 60_000;
const files = readdirSync(`${root}tests`).filter((f) => f.endsWith(".test.ts")).sort().map((f) => `tests/${f}`);

const count = (text: string, re: RegExp) => Number(re.exec(text)?.[1] ?? 0);

/** Each runner's own summary, read from its output; `undefined` when there is none. */
const summaries: Record<string, (out: string) => Omit<Tally, "label"> | undefined> = {
  node(out) {
    if (!/^ℹ tests \d+/m.test(out)) return undefined;
    return {
      passed: count(out, /^ℹ pass (\d+)/m),
      failed: count(out, /^ℹ fail (\d+)/m) + count(out, /^ℹ cancelled (\d+)/m),
      skipped: count(out, /^ℹ skipped (\d+)/m) + count(out, /^ℹ todo (\d+)/m),
    };
  },
  bun(out) {
    if (!/^Ran \d+ tests? across/m.test(out)) return undefined;
    return {
      passed: count(out, /^\s*(\d+) pass$/m),
      failed: count(out, /^\s*(\d+) fail$/m),
      skipped: count(out, /^\s*(\d+) skip$/m) + count(out, /^\s*(\d+) todo$/m),
    };
  },
  deno(out) {
    const line = /^(?:ok|FAILED) \| (\d+) passed[^|]*\| (\d+) failed(?:[^|]*\| (\d+) ignored)?/m.exec(out);
    if (!line) return undefined;
    return { passed: Number(line[1]), failed: Number(line[2]), skipped: Number(line[3] ?? 0) };
  },
};

const commands: Record<string, string[]> = {
  node: [bin("node"), "--test", ...files],
  bun: [bin("bun"), "test", "--timeout", "60000", ...files.map((f) => `./${f}`)],
  // Type-checked once up front (deno check), not again for every worker a test starts.
  deno: [bin("deno"), "test", "-A", "--no-check", ...files],
};

function tallyRunner(name: string, outcome: Outcome): Tally {
  // deno-lint-ignore no-control-regex
  const summary = summaries[name]((outcome.stdout + outcome.stderr).replace(/\x1b\[[0-9;]*m/g, ""));
  const label = `${name}: conformance suite`;
  if (outcome.timedOut) {
    return {
      label,
      passed: summary?.passed ?? 0,
      failed: (summary?.failed ?? 0) + 1,
      skipped: 0,
      note: `killed after ${RUNNER_TIMEOUT / 1000} s`,
    };
  }
  if (!summary) return { label, passed: 0, failed: 1, skipped: 0, note: `no summary (exit code ${outcome.code})` };
  if (outcome.code !== 0 && summary.failed === 0) {
    return { label, ...summary, failed: 1, note: `exit code ${outcome.code}` };
  }
  return { label, ...summary };
}

function heading(text: string): void {
  console.log(`\n${"=".repeat(72)}\n${text}\n${"=".repeat(72)}`);
}

const tallies: Tally[] = [];

heading("deno: type check (deno check)");
const check = await execute([bin("deno"), "check", "mod.ts", ...files], { timeout: 5 * 60_000, echo: true });
tallies.push({
  label: "deno: type check",
  passed: check.code === 0 ? 1 : 0,
  failed: check.code === 0 ? 0 : 1,
  skipped: 0,
});

for (const runtime of runtimes) {
  heading(`${runtime.name}: conformance suite (${files.length} files)`);
  const outcome = await execute(commands[runtime.name], {
    timeout: RUNNER_TIMEOUT,
    echo: true,
    env: { MP_RUN: JSON.stringify(runtime.run) },
  });
  tallies.push(tallyRunner(runtime.name, outcome));
}

for (const runtime of runtimes) {
  heading(`${runtime.name}: examples`);
  const tally: Tally = { label: `${runtime.name}: examples`, passed: 0, failed: 0, skipped: 0 };
  for (const example of examples()) {
    const outcome = await execute([...runtime.run, example.file], { timeout: EXAMPLE_TIMEOUT });
    const problems = compare(outcome.stdout, example.expected);
    if (outcome.timedOut) problems.unshift(`killed after ${EXAMPLE_TIMEOUT / 1000} s`);
    if (outcome.code !== 0) problems.unshift(`exit code ${outcome.code}`);
    if (problems.length === 0) {
      tally.passed++;
      console.log(`ok   ${example.file}`);
    } else {
      tally.failed++;
      console.log(`FAIL ${example.file}\n  ${problems.join("\n  ")}\n  stderr: ${outcome.stderr.trim()}`);
    }
  }
  tallies.push(tally);
}

heading("publishing: what JSR checks");
tallies.push(await publishChecks());

heading("packaging: JSR's JavaScript installed with npm, apps bundled with esbuild");
for (const tally of await packagingChecks()) tallies.push(tally);

heading("summary");
for (const t of tallies) {
  console.log(
    `${t.label.padEnd(34)} ${t.passed} passed, ${t.failed} failed, ${t.skipped} skipped${t.note ? ` (${t.note})` : ""}`,
  );
}
const passed = tallies.reduce((sum, t) => sum + t.passed, 0);
const failed = tallies.reduce((sum, t) => sum + t.failed, 0);
console.log(`${passed} passed, ${failed} failed`);
process.exitCode = failed === 0 ? 0 : 1;
