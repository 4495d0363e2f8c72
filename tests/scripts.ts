/**
 * Runs a program as its own OS process on the runtime under test, for what a
 * user sees outside the program: its stdout, stderr and exit code. `npm test`
 * sets MP_RUN to the runtime's command (e.g. `["deno","run","-A"]`).
 */
import { spawn } from "node:child_process";

export interface ScriptResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runtimeCommand(): string[] {
  const command = process.env.MP_RUN;
  if (!command) throw new Error("MP_RUN is not set: run the suite with `npm test`, or set MP_RUN to e.g. '[\"node\"]'");
  return JSON.parse(command);
}

export function runScript(path: string, timeout = 20_000): Promise<ScriptResult> {
  const [command, ...args] = runtimeCommand();
  const child = spawn(command, [...args, path], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1" },
  });
  const { promise, resolve, reject } = Promise.withResolvers<ScriptResult>();
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const timer = setTimeout(() => {
    child.kill("SIGKILL");
    reject(new Error(`${path} did not finish within ${timeout} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
  }, timeout);
  child.on("error", reject);
  child.on("close", (code) => {
    clearTimeout(timer);
    resolve({ code, stdout, stderr });
  });
  return promise;
}
