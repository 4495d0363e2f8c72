/**
 * Picks this runtime's {@linkcode Adapter}. This is the only place in the
 * library that asks which runtime it runs on.
 *
 * @module
 */
import { denoAdapter } from "./deno.ts";
import { nodeAdapter } from "./node.ts";
import type { Adapter } from "./types.ts";

export { childFlag } from "./end.ts";
export type { Adapter, ParentPort, SpawnOptions, ThreadEnd, ThreadHandle } from "./types.ts";

const globals = globalThis as { Deno?: unknown; Bun?: unknown };

/**
 * The adapter of the runtime this code runs on. Chosen without a top-level
 * await: Node 24 aborts the whole program when a worker is terminated while
 * it evaluates an async module (nodejs/node#60755).
 */
export const adapter: Adapter = globals.Deno !== undefined
  ? denoAdapter()
  : globals.Bun !== undefined
  ? nodeAdapter("bun")
  : nodeAdapter();
