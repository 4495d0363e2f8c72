/**
 * Where everything sits in a `Ring` (`ring.ts`): the Int32 cells of its
 * header, one cache line per side that writes them, and the flags of a chunk
 * header. Declared here once, as the ring's memory layout, so that it reads
 * in one screen; `ring.ts` is how messages move through it.
 *
 * @module
 */

// The cells sit on cache lines (16 Int32 each) by who writes them and who
// reads them per message: what readers publish (the head, the messages taken)
// and their lock, what writers publish (the tail, the messages sent) and
// their lock, and the rarely written rest. A writer and a reader on two cores
// then pass one line of cells per message (the tail's, which the reader must
// see), besides the data: each side writes only its own lines, and a writer
// reads the head only when the ring looks full (see `#sendLocked`). With the
// count of messages one cell that both sides changed, and each lock on the
// line its side publishes, a message cost the two cores three more line
// transfers.
export const LINE = 16;

/** The ring's head: bytes read so far (wrapping at 2^32), and the messages taken so far. */
export const BYTES_READ = 0;
export const TAKEN = 1;
/** The read lock, and 1 while a reader is in the middle of a streamed message. */
export const READ_LOCK = LINE;
export const READING = LINE + 1;

/**
 * The ring's tail: bytes written so far (wrapping at 2^32), and the complete
 * messages sent so far. `SENT - TAKEN` is the count of messages in the ring:
 * it may read one low after a process died between publishing and counting.
 */
export const BYTES_WRITTEN = 2 * LINE;
export const SENT = 2 * LINE + 1;
/** The write lock, 1 while a streamed message is being written, and where it began (its first chunk's tail). */
export const WRITE_LOCK = 3 * LINE;
export const WRITING = 3 * LINE + 1;
export const MESSAGE_START = 3 * LINE + 2;

/** How many wait for data (on BYTES_WRITTEN), for space (on BYTES_READ), for a lock: wakers skip `Atomics.notify` when none. */
export const DATA_SLEEPERS = 4 * LINE;
export const SPACE_SLEEPERS = 4 * LINE + 1;
export const LOCK_SLEEPERS = 4 * LINE + 2;
/** The handles of the two ends, for a Connection's end of file: `END_CELLS` cells laid out by ring_ends.ts. */
export const ENDS = 4 * LINE + 3;
export const CELLS = 6 * LINE;

/** A chunk header's flags: more chunks of this message follow; the rest of the message was abandoned. */
export const MORE = 1;
export const ABORT = 2;

/**
 * A chunk's payload length padded to 4 bytes, so that every chunk header is an aligned word.
 *
 * @example
 * ```ts
 * import { pad } from "./ring_layout.ts";
 * pad(5); // 8
 * ```
 */
export const pad = (n: number): number => (n + 3) & ~3;
