/**
 * The three runtimes as the scripts start them, from this clone's
 * node_modules/.bin (never a global install), and a way to run a program and
 * collect what it printed.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

export const root: string = fileURLToPath(new URL("../", import.meta.url));
const bin = (name: string) => `${root}node_modules/.bin/${name}`;

export interface Runtime {
  name: "deno" | "bun" | "node";
  /** How to run a program file on this runtime. */
  run: string[];
}

export const runtimes: Runtime[] = [
  { name: "deno", run: [bin("deno"), "run", "-A"] },
  { name: "bun", run: [bin("bun")] },
  { name: "node", run: [bin("node")] },
];

export { bin };

/** One line of `npm test`'s summary. */
export interface Tally {
  label: string;
  passed: number;
  failed: number;
  skipped: number;
  note?: string;
}

export interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/**
 * Runs `command` to its end (or kills it after `timeout` ms). With `echo`,
 * its output is also copied to ours as it comes, so CI logs show progress.
 */
export function execute(
  command: string[],
  options: { timeout: number; echo?: boolean; env?: Record<string, string> },
): Promise<Outcome> {
  const [file, ...args] = command;
  const child = spawn(file, args, {
    cwd: root,
    stdio: ["ignore", "pipe", "pipe"],
    // Deno reads any FORCE_COLOR, even "0", as "force": leave it out.
    env: { ...process.env, NO_COLOR: "1", ...options.env },
    detached: true,
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    stdout += chunk;
    if (options.echo) process.stdout.write(chunk);
  });
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
    if (options.echo) process.stderr.write(chunk);
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    // The whole group: a hung runner's own children must not outlive it.
    try {
      process.kill(-child.pid!, "SIGKILL");
    } catch {
      child.kill("SIGKILL");
    }
  }, options.timeout);
  return new Promise((resolve) => {
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, timedOut });
    });
  });
}
