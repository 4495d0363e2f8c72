/**
 * The wire between a parent and the child it starts, declared once for both
 * sides (`process.ts` and `bootstrap.ts`): the child says hello as soon as it
 * listens, the parent answers with the bootstrap, and the child says it is
 * running once its target's module is loaded (a child still importing it is
 * not terminated at once: see `stop` in `process.ts`). The end is the
 * adapters' end marker.
 *
 * @module
 */
import type { PidTable } from "./pids.ts";
import type { Dumped } from "./reduction.ts";
import type { TargetSpec } from "./spawn.ts";

/** The parent of the current process, as `parentProcess()` returns it. */
export interface ParentProcess {
  /** The parent's name, `MainProcess` for the main thread. */
  readonly name: string;
  /** The parent's pid. */
  readonly pid: number;
}

/** The child's first message: it listens, and waits for its {@linkcode Bootstrap}. */
export interface Hello {
  t: "hello";
}

/** The child has loaded its target's module and is about to run it. */
export interface Running {
  t: "running";
}

/** What a child posts to its parent. */
export type ChildMessage = Hello | Running;

/**
 * The hello, as the child posts it (and the spare's taker replays it).
 *
 * @example
 * ```ts
 * import { HELLO } from "./process_protocol.ts";
 * console.log(HELLO.t); // "hello"
 * ```
 */
export const HELLO: Hello = { t: "hello" };

/**
 * The running message.
 *
 * @example
 * ```ts
 * import { RUNNING } from "./process_protocol.ts";
 * console.log(RUNNING.t); // "running"
 * ```
 */
export const RUNNING: Running = { t: "running" };

/** What a child is told when it starts, after it has said hello. */
export interface Bootstrap {
  t: "start";
  name: string;
  pid: number;
  daemon: boolean;
  identity: number[];
  parent: ParentProcess;
  pids: PidTable;
  /** The fence the parent raises before it reports this process ended. */
  fence: SharedArrayBuffer;
  target?: TargetSpec;
  subclass?: TargetSpec;
  args: Omit<Dumped, "transfer">;
  fields: Omit<Dumped, "transfer">;
  /**
   * The library's main module, when `args` or `fields` hold the library's
   * objects: the child imports it before it revives them, since their kinds
   * are registered by modules it may not have loaded (a target module that
   * imports the library's types only).
   */
  library?: string;
  inherited: Record<string, unknown>;
  /** This child's own port from `portForEachChild` (lifecycle.ts), for the resource sharer. */
  port?: MessagePort;
  environment?: Record<string, string>;
  authkey: Uint8Array;
}

/**
 * Whether a message from the parent is a {@linkcode Bootstrap}.
 *
 * @example
 * ```ts
 * import { isBootstrap } from "./process_protocol.ts";
 * console.log(isBootstrap({ t: "hello" })); // false
 * ```
 */
export function isBootstrap(data: unknown): data is Bootstrap {
  return (data as Partial<Bootstrap> | null)?.t === "start";
}
