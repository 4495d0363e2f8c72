/**
 * Issue 7, "Ready to publish": the library as its users will get it.
 *
 * - The JavaScript that JSR serves to Node and Bun: every module reachable
 *   from mod.ts transpiled to `.js`, with its import specifiers rewritten as
 *   JSR rewrites them (and nothing else, so a `new URL("./x.ts",
 *   import.meta.url)` would break here as it would there), installed with npm
 *   into a project without TypeScript that runs tests/packaging/consumer.mjs.
 * - An app bundled by esbuild into one file (tests/packaging/app.ts), as is
 *   and minified with --keep-names, run on Deno, Bun and Node: its children
 *   start from the bundle itself.
 *
 * Each output is compared with its `.expected` file as the examples are.
 * Run directly (`node_modules/.bin/node scripts/packaging.ts`) it prints one
 * line per check and exits 1 on a failure; `npm test` calls packagingChecks().
 */
import { build } from "esbuild";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { compare } from "./examples.ts";
import { execute, type Outcome, root, runtimes, type Tally } from "./runtimes.ts";

const RUN_TIMEOUT = 30_000;
const INSTALL_TIMEOUT = 120_000;
const STDERR_LINES = 30;
const here = `${root}tests/packaging/`;

const expected = (name: string) => readFileSync(`${here}${name}`, "utf8").replace(/\n$/, "").split("\n");

/** Relative specifiers of `import`/`export … from`/`import()`, the ones JSR rewrites; never other strings. */
const specifier = /(\bfrom\s*|\bimport\s*\(\s*|\bimport\s*)(["'])(\.\.?\/[^"'\n]*?)\.ts\2/g;
/** A relative `.ts` path still in the JavaScript: it names a file that JSR's Node and Bun users do not have. */
const leftover = /["'`]\.\.?\/[^"'`\n]*\.ts["'`]/;

/** Writes JSR's JavaScript twin of the library into `dir`; returns the `.ts` paths still named in it. */
export async function buildLayout(dir: string): Promise<string[]> {
  // Bundled only to learn which files mod.ts reaches.
  const { metafile } = await build({
    absWorkingDir: root,
    entryPoints: ["mod.ts"],
    bundle: true,
    write: false,
    metafile: true,
    external: ["comlink", "node:*"],
    format: "esm",
    platform: "neutral",
    logLevel: "silent",
  });
  const { outputFiles } = await build({
    absWorkingDir: root,
    entryPoints: Object.keys(metafile.inputs).filter((file) => file.endsWith(".ts")),
    outbase: ".",
    outdir: dir,
    bundle: false,
    write: false,
    format: "esm",
    platform: "neutral",
    target: "es2022",
    logLevel: "silent",
  });
  const leftovers: string[] = [];
  for (const file of outputFiles) {
    const text = file.text.replace(specifier, "$1$2$3.js$2");
    const left = leftover.exec(text);
    if (left) leftovers.push(`${file.path.slice(dir.length + 1)}: ${left[0]}`);
    mkdirSync(dirname(file.path), { recursive: true });
    writeFileSync(file.path, text);
  }
  const { version } = JSON.parse(readFileSync(`${root}deno.json`, "utf8"));
  writeFileSync(
    join(dir, "package.json"),
    JSON.stringify(
      {
        name: "@mp/multiprocessing",
        version,
        type: "module",
        exports: { ".": "./mod.js" },
        dependencies: { comlink: "^4.4.2" },
      },
      null,
      2,
    ),
  );
  return leftovers;
}

/** The one-file bundle of tests/packaging/app.ts, as `esbuild app.ts --bundle --format=esm --platform=node [--minify --keep-names]`. */
async function bundle(outfile: string, minify: boolean): Promise<void> {
  await build({
    entryPoints: [`${here}app.ts`],
    outfile,
    bundle: true,
    format: "esm",
    platform: "node",
    minify,
    keepNames: minify,
    logLevel: "silent",
  });
}

/** The end of a failed run's standard error, its lines cut short: Node and Bun quote a minified bundle's whole line. */
function tail(text: string): string {
  return text.trim().split("\n").slice(-STDERR_LINES).map((line) => line.length > 240 ? `${line.slice(0, 240)}…` : line)
    .join("\n");
}

/** npm, without the npm_* settings that `npm test` hands its script: they describe this repository. */
function npm(args: string[]): Promise<Outcome> {
  const unset = Object.keys(process.env).filter((key) => /^npm_/i.test(key)).flatMap((key) => ["-u", key]);
  return execute(["env", ...unset, "npm", ...args], { timeout: INSTALL_TIMEOUT });
}

export async function packagingChecks(): Promise<Tally[]> {
  const tallies = new Map<string, Tally>();
  const record = (group: string, what: string, problems: string[], outcome?: Outcome) => {
    const tally = tallies.get(group) ?? { label: `${group}: packaging`, passed: 0, failed: 0, skipped: 0 };
    tallies.set(group, tally);
    if (outcome?.timedOut) problems.unshift("timed out");
    if (outcome && outcome.code !== 0) problems.unshift(`exit code ${outcome.code}`);
    if (problems.length === 0) {
      tally.passed++;
      console.log(`ok   ${what}`);
      return;
    }
    tally.failed++;
    const stderr = outcome?.stderr.trim() ? `\n  stderr: ${tail(outcome.stderr)}` : "";
    console.log(`FAIL ${what}\n  ${problems.join("\n  ")}${stderr}`);
  };
  const run = async (group: string, what: string, command: string[], lines: string[]) => {
    const outcome = await execute(command, { timeout: RUN_TIMEOUT });
    record(group, what, compare(outcome.stdout, lines), outcome);
  };

  const temp = mkdtempSync(join(tmpdir(), "mp-packaging-"));
  try {
    const layout = join(temp, "layout");
    const consumer = join(temp, "consumer");
    const leftovers = await buildLayout(layout);
    record("layout", "JSR's JavaScript layout names no .ts file", leftovers);

    mkdirSync(consumer);
    writeFileSync(join(consumer, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }));
    writeFileSync(join(consumer, "consumer.mjs"), readFileSync(`${here}consumer.mjs`));
    // --install-links copies the folder, as the tarball from JSR's npm registry would be, instead of linking it.
    const install = await npm([
      "install",
      "--prefix",
      consumer,
      "--install-links",
      "--no-audit",
      "--no-fund",
      "--loglevel=error",
      layout,
    ]);
    record("layout", "npm install of the layout into a JavaScript project", [], install);

    const app = join(temp, "bundle", "app.mjs");
    const minified = join(temp, "bundle", "app.min.mjs");
    await Promise.all([bundle(app, false), bundle(minified, true)]);

    for (const runtime of runtimes) {
      // Deno's users import the TypeScript from JSR, yet a Deno app over node_modules must work too.
      if (install.code === 0) {
        await run(runtime.name, `${runtime.name}: consumer.mjs over node_modules`, [
          ...runtime.run,
          join(consumer, "consumer.mjs"),
        ], expected("consumer.expected"));
      }
      await run(runtime.name, `${runtime.name}: esbuild bundle`, [...runtime.run, app], expected("app.expected"));
      await run(
        runtime.name,
        `${runtime.name}: esbuild bundle, --minify --keep-names`,
        [...runtime.run, minified],
        expected("app.expected"),
      );
    }
  } finally {
    rmSync(temp, { recursive: true, force: true });
  }
  return [...tallies.values()];
}

if (import.meta.main) {
  const started = performance.now();
  const tallies = await packagingChecks();
  const failed = tallies.reduce((sum, t) => sum + t.failed, 0);
  const passed = tallies.reduce((sum, t) => sum + t.passed, 0);
  console.log(`${passed} passed, ${failed} failed (${((performance.now() - started) / 1000).toFixed(1)} s)`);
  process.exitCode = failed === 0 ? 0 : 1;
}
