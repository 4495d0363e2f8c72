/**
 * Picks this runtime's {@linkcode Adapter}. This is the only place in the
 * library that asks which runtime it runs on.
 *
 * @module
 */
import type { Adapter } from "./types.ts";

export type { Adapter, ParentPort, SpawnOptions, ThreadEnd, ThreadHandle } from "./types.ts";

const globals = globalThis as { Deno?: unknown; Bun?: unknown };

/** The adapter of the runtime this code runs on. */
export const adapter: Adapter = globals.Deno !== undefined
  ? (await import("./deno.ts")).adapter
  : globals.Bun !== undefined
  ? (await import("./bun.ts")).adapter
  : (await import("./node.ts")).adapter;
