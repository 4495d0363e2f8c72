/**
 * The checks JSR would make when the package is published, so that a change
 * that breaks publishing fails `npm test`: `deno publish --dry-run` (the
 * module graph, slow types, no unreachable `jsr:` import), `deno doc --lint`
 * on each entry point that deno.json exports (JSDoc on every export, no
 * private type in a public one), a module doc on every entry point (which
 * `deno doc --lint` does not check), and `deno lint` and `deno fmt --check`
 * over all the code.
 */
import { readFileSync } from "node:fs";
import { bin, execute, root, type Tally } from "./runtimes.ts";

const TIMEOUT = 3 * 60_000;
const code = ["mod.ts", "src/", "tests/", "scripts/", "bench/", "examples/"];

/** Runs a command; what it printed is the problem when it fails. */
async function runs(command: string[]): Promise<string[]> {
  const outcome = await execute(command, { timeout: TIMEOUT });
  return outcome.code === 0 ? [] : [outcome.stderr.trim() || outcome.stdout.trim()];
}

/** The entry points JSR publishes, as deno.json's `exports` lists them. */
function entryPoints(): string[] {
  const exports: Record<string, string> = JSON.parse(readFileSync(`${root}deno.json`, "utf8")).exports;
  return Object.values(exports);
}

/**
 * `deno doc --lint` on each entry point alone, as a user who imports only it
 * reads its docs: every type its exports mention must be exported from it too.
 * (Linted together, a type exported by any one of them would pass for all.)
 */
async function docLint(): Promise<string[]> {
  const problems: string[] = [];
  for (const entry of entryPoints()) {
    for (const problem of await runs([bin("deno"), "doc", "--lint", entry])) {
      // An entry that imports node: modules gets a warning per file @types/node names and deno cannot resolve.
      const errors = problem.split("\n").filter((line) => !/^Warning Failed resolving types|^\s+at file:/.test(line));
      problems.push(`${entry}:\n${errors.join("\n")}`);
    }
  }
  return problems;
}

interface DocJson {
  nodes: Record<string, { module_doc?: { doc?: string } }>;
}

async function moduleDocs(): Promise<string[]> {
  const problems: string[] = [];
  for (const entry of entryPoints()) {
    const outcome = await execute([bin("deno"), "doc", "--json", entry], { timeout: TIMEOUT });
    if (outcome.code !== 0) {
      problems.push(`deno doc --json ${entry}: exit code ${outcome.code}`);
      continue;
    }
    const docs = (JSON.parse(outcome.stdout) as DocJson).nodes;
    const own = Object.entries(docs).find(([url]) => url.endsWith(entry.replace(/^\./, "")));
    if (!own?.[1].module_doc?.doc?.trim()) problems.push(`${entry} has no module doc (/** … @module */)`);
  }
  return problems;
}

export async function publishChecks(): Promise<Tally> {
  const tally: Tally = { label: "deno: publish checks", passed: 0, failed: 0, skipped: 0 };
  const checks: [string, () => Promise<string[]>][] = [
    ["deno publish --dry-run", () => runs([bin("deno"), "publish", "--dry-run", "--allow-dirty"])],
    ["deno doc --lint on every entry point", docLint],
    ["a module doc on every entry point", moduleDocs],
    ["deno lint", () => runs([bin("deno"), "lint", ...code])],
    ["deno fmt --check", () => runs([bin("deno"), "fmt", "--check", ...code])],
  ];
  for (const [what, check] of checks) {
    const problems = await check();
    if (problems.length === 0) {
      tally.passed++;
      console.log(`ok   ${what}`);
    } else {
      tally.failed++;
      console.log(`FAIL ${what}\n  ${problems.join("\n  ")}`);
    }
  }
  return tally;
}

if (import.meta.main) {
  const tally = await publishChecks();
  process.exitCode = tally.failed === 0 ? 0 : 1;
}
