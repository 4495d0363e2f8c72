/**
 * The wire between a parent and the child it starts, declared once for both
 * sides (`launch.ts` and `bootstrap.ts`): the parent posts the bootstrap
 * right after it creates the worker, which holds it until the bootstrap
 * module listens; the child claims its start in a shared cell before it
 * loads any module of the user's, and says it is running once its target's
 * module is loaded (a child still importing it is not terminated at once:
 * see `stop` in `launch.ts`). The end is the adapters' end marker.
 *
 * No hello comes first: on Bun that round trip cost about 1 ms of a 15 ms
 * start (empty target, median of 30 taking turns with the old code: 15.6 ->
 * 14.5 ms, with the lazy node:fs), on Node about 1 ms of 36; Deno gained
 * nothing measurable, as its first message to a worker arrives some 4 ms
 * after it is posted, even to an idle worker. The one thing the hello told
 * the parent, that the child had loaded no module of the user's yet, the
 * cell tells it.
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

/** The child has loaded its target's module and is about to run it. */
export interface Running {
  t: "running";
}

/** What a child posts to its parent. */
export type ChildMessage = Running;

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

/** What a child is told when it starts. */
export interface Bootstrap {
  t: "start";
  /** The cell of {@linkcode claimStart} and {@linkcode cancelStart}: a 4-byte SharedArrayBuffer. */
  begun: SharedArrayBuffer;
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
 * console.log(isBootstrap({ t: "running" })); // false
 * ```
 */
export function isBootstrap(data: unknown): data is Bootstrap {
  return (data as Partial<Bootstrap> | null)?.t === "start";
}

/** The states of a `begun` cell: nobody has claimed it, the child has, or the parent has called the start off. */
const UNCLAIMED = 0;
const BEGUN = 1;
const CANCELLED = 2;

/**
 * A new `begun` cell, for a {@linkcode Bootstrap}.
 *
 * @example
 * ```ts
 * import { beginCell } from "./process_protocol.ts";
 * console.log(beginCell().byteLength); // 4
 * ```
 */
export function beginCell(): SharedArrayBuffer {
  return new SharedArrayBuffer(4);
}

/**
 * In the child, before it loads any module of the user's: whether it may go
 * on. `false` when the parent has called the start off; the child then ends
 * at once, having run nothing.
 *
 * @example
 * ```ts
 * import { beginCell, claimStart } from "./process_protocol.ts";
 * console.log(claimStart(beginCell())); // true
 * ```
 */
export function claimStart(begun: SharedArrayBuffer): boolean {
  return Atomics.compareExchange(new Int32Array(begun), 0, UNCLAIMED, BEGUN) === UNCLAIMED;
}

/**
 * In the parent, stopping a child: whether the child has loaded nothing of
 * the user's and never will, so that its thread, which then runs only the
 * bootstrap (no top-level await), can be stopped at once.
 *
 * @example
 * ```ts
 * import { beginCell, cancelStart, claimStart } from "./process_protocol.ts";
 * const begun = beginCell();
 * console.log(cancelStart(begun), claimStart(begun)); // true false
 * ```
 */
export function cancelStart(begun: SharedArrayBuffer): boolean {
  return Atomics.compareExchange(new Int32Array(begun), 0, UNCLAIMED, CANCELLED) === UNCLAIMED;
}
