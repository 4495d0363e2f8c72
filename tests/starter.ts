/**
 * Starts children on targets exported by one module of `tests/fixtures/`
 * (a worker must never import a test file itself).
 */
import { Process } from "../mod.ts";

/** `const start = starter("queues"); const p = start("produce", queue, 10);` */
export function starter(fixture: string): (target: string, ...args: unknown[]) => Process {
  const module = new URL(`./fixtures/${fixture}.ts`, import.meta.url);
  return (target, ...args) => {
    const p = new Process({ target, args, module });
    p.start();
    return p;
  };
}
