/**
 * The worker host's command line: `deno run -A …/cluster/worker.ts`, `node
 * …/cluster/worker.ts` or `bun …/cluster/worker.ts`, with options as
 * {@linkcode serve}'s. Prints `host NAME ready` once it takes jobs, and
 * finishes its jobs before it exits on SIGINT or SIGTERM.
 *
 * @example
 * ```sh
 * node src/cluster/worker.ts --url redis://10.0.0.5:6379 --processes 8 --root .
 * ```
 *
 * @module
 */
import { resolve } from "node:path";
import process from "node:process";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { serve, type ServeOptions } from "./host.ts";

const usage = `usage: worker.ts [--url redis://host:6379] [--queue mp] [--name NAME] [--processes N]
  [--root DIR] [--initializer NAME --module URL] [--maxtasksperchild N] [--memory-limit MiB]
  [--concurrency N] [--lock-duration MS] [--stalled-interval MS]`;

function count(text: string | undefined, option: string): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`--${option} must be an integer >= 1, got ${text}`);
  return value;
}

/**
 * Reads the command line into {@linkcode ServeOptions}.
 *
 * @example
 * ```ts
 * const options = readCommandLine(["--url", "redis://10.0.0.5:6379", "--processes", "8"]);
 * ```
 */
function readCommandLine(args: string[]): ServeOptions {
  const { values } = parseArgs({
    args,
    options: {
      url: { type: "string" },
      queue: { type: "string" },
      name: { type: "string" },
      processes: { type: "string" },
      root: { type: "string" },
      initializer: { type: "string" },
      module: { type: "string" },
      maxtasksperchild: { type: "string" },
      "memory-limit": { type: "string" },
      concurrency: { type: "string" },
      "lock-duration": { type: "string" },
      "stalled-interval": { type: "string" },
    },
  });
  return {
    url: values.url,
    queue: values.queue,
    name: values.name,
    processes: count(values.processes, "processes"),
    root: values.root,
    initializer: values.initializer,
    module: values.module === undefined || /^[a-z][a-z0-9+.-]+:/i.test(values.module)
      ? values.module
      : pathToFileURL(resolve(values.module)).href,
    maxtasksperchild: count(values.maxtasksperchild, "maxtasksperchild"),
    memoryLimit: count(values["memory-limit"], "memory-limit"),
    concurrency: count(values.concurrency, "concurrency"),
    lockDuration: count(values["lock-duration"], "lock-duration"),
    stalledInterval: count(values["stalled-interval"], "stalled-interval"),
  };
}

if (import.meta.main) {
  let options: ServeOptions;
  try {
    options = readCommandLine(process.argv.slice(2));
  } catch (error) {
    console.error(`${(error as Error).message}\n${usage}`);
    process.exit(2);
  }
  const host = await serve(options);
  console.log(`host ${host.name} ready`);
  // Bounded: a host whose jobs do not finish within CLOSE_MS exits anyway (its jobs stall and are
  // reported as the clients' BrokenPoolError or retried), rather than ignore the signal.
  const CLOSE_MS = 10_000;
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    const timer = setTimeout(() => process.exit(1), CLOSE_MS);
    host.close().then(
      () => (clearTimeout(timer), console.log(`host ${host.name} stopped`), process.exit(0)),
      (error) => (console.error(error), process.exit(1)),
    );
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}
