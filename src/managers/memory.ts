/**
 * The manager's memory: the shared memory block that names a manager (its
 * address), the cells at its head, the request ring that follows them, and
 * the block of each calling process's answers. Any process of the program
 * can open a block by name, which is why a proxy is only a name and an id.
 * Also the timings both sides poll by, which only make sense together.
 *
 * @module
 */
import { Ring } from "../ring.ts";
import type { SharedMemory } from "../shared_memory.ts";

/** The cells at the head of the manager's block; the request ring follows them. */
export const SHUTDOWN = 0; // 1 once the manager is shut down
export const SERVER_PID = 1;
export const HOT = 2; // 1 while the server serves or polls: a caller may poll for its answer
export const LAST_ID = 3; // the last object id handed out
const CELLS = 16;
const REQUEST_CAPACITY = 1 << 18;
/** The capacity of a caller's answer ring. */
export const ANSWER_CAPACITY = 1 << 18;
/** The size of a manager's block. */
export const BLOCK_SIZE = CELLS * 4 + Ring.size(REQUEST_CAPACITY);

/**
 * How long the server polls for the next request before it sleeps, and a
 * caller for its answer; each backs off while its polls come up empty
 * (polling.ts).
 */
export const SERVER_POLL_MS = 0.5;
export const CALLER_POLL_MS = 0.2;
/** A server kept busy still lets its event loop run this often (control requests, answers waiting for room). */
export const SERVER_TURN_MS = 50;
/** How often a caller waiting for answers checks that the server is still there. */
export const WATCH_MS = 25;
/** How often an idle server looks for callers that ended without a word. */
export const REAP_MS = 250;

/** A manager's block seen as its cells and its request ring. */
export interface ManagerMemory {
  cells: Int32Array;
  requests: Ring;
}

/** The cells and request ring of a manager's block; `fresh` lays a new ring over a new block. */
export function managerMemory(block: SharedMemory, fresh: boolean): ManagerMemory {
  const { buffer, byteOffset } = block.buf;
  const ringBytes = block.buf.subarray(CELLS * 4, BLOCK_SIZE);
  return {
    cells: new Int32Array(buffer, byteOffset, CELLS),
    requests: fresh
      ? Ring.create(REQUEST_CAPACITY, ringBytes)
      : new Ring(buffer as SharedArrayBuffer, ringBytes.byteOffset, ringBytes.byteLength),
  };
}

/** The block of a process's answers from the manager at `address`. */
export function answersName(address: string, pid: number): string {
  return `${address}.${pid}`;
}

/** Closes a block, and unlinks it unless another process did already: whichever of its two users is last. */
export function discard(block: SharedMemory): void {
  block.close();
  try {
    block.unlink();
  } catch {
    // The other end unlinked it.
  }
}
