/**
 * The pid table: the pids this program's process tree hands out, and one
 * "ended" bit per pid, so that any process can tell that a lock's or a
 * ring's holder is gone and take over what it held. Below every primitive
 * that records a holder (rings, locks, shared memory) and below `Process`,
 * which hands the pids out and sets the bits.
 *
 * @module
 */
import { adapter } from "./adapters/mod.ts";

/** The table as a child receives it in its bootstrap: shared by the whole tree. */
export interface PidTable {
  /** The last pid handed out, as an offset from `base`. */
  cell: Int32Array;
  /** The main process's pid (the OS pid); children count up from it. */
  base: number;
  /** One bit per pid slot, set once that process has ended. */
  ended: Int32Array;
}

/** Pid slots in the `ended` bitmap (128 KiB); pids wrap around it, and a slot is cleared when its pid is handed out. */
const PID_SLOTS = 1 << 20;

let table: PidTable = {
  cell: new Int32Array(new SharedArrayBuffer(4)),
  base: adapter.pid,
  ended: new Int32Array(new SharedArrayBuffer(PID_SLOTS / 8)),
};

/** This thread's pid, for the hot paths that record a holder (a ring's locks). */
let pidOfThread = adapter.pid;

/**
 * The pid of the process this thread runs, as `currentProcess().pid`, without
 * looking the process object up.
 *
 * @example
 * ```ts
 * import { ownPid } from "./pids.ts";
 * console.log(ownPid() > 0); // true
 * ```
 */
export function ownPid(): number {
  return pidOfThread;
}

/**
 * The table, to send to a child.
 *
 * @example
 * ```ts
 * import { pidTable } from "./pids.ts";
 * console.log(pidTable().base > 0); // true
 * ```
 */
export function pidTable(): PidTable {
  return table;
}

/**
 * In a child: takes its parent's table as its own, and `pid` as its own pid.
 *
 * @example
 * ```ts
 * import { adoptPidTable, pidTable } from "./pids.ts";
 * adoptPidTable(pidTable(), 7);
 * ```
 */
export function adoptPidTable(given: PidTable, pid: number): void {
  table = given;
  pidOfThread = pid;
}

/**
 * Hands out the next pid of the tree, not yet ended.
 *
 * @example
 * ```ts
 * import { hasEnded, newPid } from "./pids.ts";
 * console.log(hasEnded(newPid())); // false
 * ```
 */
export function newPid(): number {
  const pid = table.base + Atomics.add(table.cell, 0, 1) + 1;
  const slot = slotOf(pid);
  Atomics.and(table.ended, slot >> 5, ~(1 << (slot & 31)));
  return pid;
}

/**
 * Records that the process with `pid` has ended: its parent does, as soon as it sees the end.
 *
 * @example
 * ```ts
 * import { hasEnded, markEnded, newPid } from "./pids.ts";
 * const pid = newPid();
 * markEnded(pid);
 * console.log(hasEnded(pid)); // true
 * ```
 */
export function markEnded(pid: number): void {
  const slot = slotOf(pid);
  Atomics.or(table.ended, slot >> 5, 1 << (slot & 31));
}

/**
 * Whether the process with this pid, started anywhere in this program's
 * process tree, has ended. The main process never has, as far as it can tell.
 *
 * @example
 * ```ts
 * import { hasEnded, ownPid } from "./pids.ts";
 * console.log(hasEnded(ownPid())); // false
 * ```
 */
export function hasEnded(pid: number): boolean {
  if (pid === table.base) return false;
  const slot = slotOf(pid);
  return (Atomics.load(table.ended, slot >> 5) & (1 << (slot & 31))) !== 0;
}

/** The bit of `pid` in `ended`: word `slot >> 5`, bit `slot & 31`. */
function slotOf(pid: number): number {
  return (pid - table.base) & (PID_SLOTS - 1);
}
