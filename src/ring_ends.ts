/**
 * The two ends of a ring (ring.ts) as a pipe has them: how many handles each
 * end has open, and which processes hold them, so that a Connection sees
 * end-of-file when every sending handle is closed and a broken pipe when
 * every receiving one is, as with the file descriptors of Python's pipes. A
 * process that ends without closing its handles (a terminated child) has
 * them closed for it by the next process that looks ({@linkcode RingEnds.reap}).
 *
 * Queues do not use this: a queue has no end of file.
 *
 * @module
 */
import { beginCommit, endCommit } from "./fence.ts";
import { holderEnded, holderPid } from "./holder.ts";

/** One end of a ring. */
export type End = "senders" | "receivers";

// The cells, in the part of the ring's header that ring.ts keeps for them.
/** Open handles of the sending and the receiving end. */
const SENDERS = 0;
const RECEIVERS = 1;
/** Handles recorded by pid (a slot a handle, 0: free), for closing the handles of the dead. */
const HOLDER_SLOTS = 8;
const SENDER_PIDS = 2;
const RECEIVER_PIDS = SENDER_PIDS + HOLDER_SLOTS;

/** How many Int32 cells the ends take in a ring's header. */
export const END_CELLS: number = RECEIVER_PIDS + HOLDER_SLOTS;

/** The first of the slots that record who holds `end`. */
function holderSlots(end: End): number {
  return end === "senders" ? SENDER_PIDS : RECEIVER_PIDS;
}

/**
 * The handles of a ring's two ends, on `END_CELLS` cells of its header.
 *
 * @example
 * ```ts
 * import { Ring } from "./ring.ts";
 * const ring = Ring.create();
 * console.log(ring.ends.senders()); // 1
 * ```
 */
export class RingEnds {
  readonly cells: Int32Array;
  /** Wakes the ring's waiters, for an end that closed. */
  #wake: () => void;

  /** The ends on `cells`; `wake` wakes the ring's readers and writers to re-check. */
  constructor(cells: Int32Array, wake: () => void) {
    this.cells = cells;
    this.#wake = wake;
  }

  /** For a new ring: each end has one open handle. */
  open(): void {
    this.cells[SENDERS] = 1;
    this.cells[RECEIVERS] = 1;
  }

  /** Opens (+1) or closes (-1) a handle on the sending or receiving end; returns how many stay open. */
  handles(end: End, change: number): number {
    const open = Atomics.add(this.cells, end === "senders" ? SENDERS : RECEIVERS, change) + change;
    // A closed end changes what waiters on the other side should do: wake them to re-check.
    if (open === 0) this.#wake();
    return open;
  }

  /**
   * Records this process as the holder of one handle on `end`, so that the
   * handle is closed for it if it ends without closing it. Past
   * `HOLDER_SLOTS` holders, a handle is only counted.
   */
  claim(end: End): void {
    const first = holderSlots(end);
    const me = holderPid();
    beginCommit();
    for (let slot = first; slot < first + HOLDER_SLOTS; slot++) {
      if (Atomics.compareExchange(this.cells, slot, 0, me) === 0) break;
    }
    endCommit();
  }

  /** Closes a handle of this process on `end`. */
  release(end: End): void {
    const first = holderSlots(end);
    const me = holderPid();
    // One commit: a fenced process's handle was closed for it by reap().
    beginCommit();
    for (let slot = first; slot < first + HOLDER_SLOTS; slot++) {
      if (Atomics.compareExchange(this.cells, slot, me, 0) === me) break;
    }
    this.handles(end, -1);
    endCommit();
  }

  /** Closes the handles on `end` of the processes that ended without closing them. */
  reap(end: End): void {
    const first = holderSlots(end);
    for (let slot = first; slot < first + HOLDER_SLOTS; slot++) {
      const pid = Atomics.load(this.cells, slot);
      if (!holderEnded(pid)) continue;
      beginCommit();
      if (Atomics.compareExchange(this.cells, slot, pid, 0) === pid) this.handles(end, -1);
      endCommit();
    }
  }

  /** Open handles on the sending end. */
  senders(): number {
    return Atomics.load(this.cells, SENDERS);
  }

  /** Open handles on the receiving end. */
  receivers(): number {
    return Atomics.load(this.cells, RECEIVERS);
  }
}
