/**
 * The transport under `Queue`, `SimpleQueue` and `Connection`: a ring of
 * bytes in a SharedArrayBuffer that carries whole messages between any
 * processes, with no thread in between.
 *
 * Why a shared ring and not message ports: a queue is shared by any number
 * of processes, including two children while the main thread is busy, and a
 * MessagePort can be handed to exactly one receiver; a broker on the main
 * thread would stall whenever the main thread computes. Measured on small
 * objects (bench/queues.ts), a ring plus `pickle` moves 0.4-1.8x as many
 * items per second as raw `postMessage` (below it on Bun, whose
 * `postMessage` is very fast; above it on Deno), and a Pipe round trip
 * takes about as long as a raw MessageChannel ping-pong.
 *
 * Layout (`ring_layout.ts`): a header of Int32 cells, then `capacity` bytes (a power of two).
 * The head (`BYTES_READ`) and the tail (`BYTES_WRITTEN`) count bytes read and written, wrapping at 2^32. A
 * message is one or more chunks, each a 4-byte header (length << 2 | flags)
 * and its payload padded to 4 bytes. A message that fits in the ring is one
 * chunk; a bigger one is streamed in chunks while the writer holds the write
 * lock and the reader the read lock (Python's pipes stream the same way).
 *
 * Faults: the write and read locks are robust holder cells (holder.ts): they
 * hold the pid of their holder, and the next process takes over a lock whose
 * holder ended while holding it (terminated mid-`put`): a writer that died
 * before publishing left nothing visible; the part of a streamed message
 * that a dead writer left is taken back if no reader has begun it, and
 * otherwise ended by an `ABORT` chunk, so the reader drops it. A reader that
 * died in the middle of a streamed message
 * took that one message with it: the next reader skips its remaining chunks.
 *
 * Every write that others can see (a chunk published, the head moved, a
 * count, a handle) is a commit of `fence.ts`: a process that its parent has
 * reported ended (on Deno, a terminated thread may go on running) ends there
 * instead of writing over what the process that took its lock over writes.
 * Locks are released with a compare-and-swap for the same reason: a holder
 * whose lock was taken over must not free the new holder's.
 *
 * @module
 */
import { adapter } from "./adapters/mod.ts";
import { awaitPlanUntil, blockOnPlanUntil, type CellWaitRequest, type Plan, TIMED_OUT } from "./blocking.ts";
import { beginCommit, endCommit } from "./fence.ts";
import { holderEnded, holderPid, holderWait, letGo, takeOver, tryHold } from "./holder.ts";
import { END_CELLS, RingEnds } from "./ring_ends.ts";
import {
  ABORT,
  BYTES_READ,
  BYTES_WRITTEN,
  CELLS,
  DATA_SLEEPERS,
  ENDS,
  LOCK_SLEEPERS,
  MESSAGE_START,
  MORE,
  pad,
  READ_LOCK,
  READING,
  SENT,
  SPACE_SLEEPERS,
  TAKEN,
  WRITE_LOCK,
  WRITING,
} from "./ring_layout.ts";
import { deadline, type Wait } from "./wait.ts";

/** The default ring size: 1 MiB; messages that do not fit are streamed. */
export const DEFAULT_CAPACITY: number = 1 << 20;

/**
 * Messages up to this many bytes are copied in by a loop: a typed array's
 * `set` into shared memory costs 0.24 us on Bun whatever the size (a loop
 * over 20 bytes 0.07 us), 0.12 us on Node (0.02 us); measured with 20-byte
 * messages, the size of a small queue item.
 */
const COPY_BY_LOOP = 64;

/** A message ring in shared memory. Every process that has the buffer can send and receive. */
export class Ring {
  readonly buffer: SharedArrayBuffer;
  readonly cells: Int32Array;
  readonly bytes: Uint8Array;
  readonly capacity: number;
  /** The handles of its two ends (ring_ends.ts). */
  readonly ends: RingEnds;
  /** The data as words: chunk headers are 4-byte aligned. */
  #words: Int32Array;
  #mask: number;

  /** The ring laid over `byteLength` bytes of `buffer` from `byteOffset` (the whole buffer by default). */
  constructor(buffer: SharedArrayBuffer, byteOffset: number = 0, byteLength: number = buffer.byteLength - byteOffset) {
    this.buffer = buffer;
    this.cells = new Int32Array(buffer, byteOffset, CELLS);
    this.ends = new RingEnds(new Int32Array(buffer, byteOffset + ENDS * 4, END_CELLS), () => {
      Atomics.notify(this.cells, BYTES_WRITTEN);
      Atomics.notify(this.cells, BYTES_READ);
    });
    const capacity = byteLength - CELLS * 4;
    this.bytes = new Uint8Array(buffer, byteOffset + CELLS * 4, capacity);
    this.#words = new Int32Array(buffer, byteOffset + CELLS * 4, capacity / 4);
    this.capacity = capacity;
    this.#mask = capacity - 1;
  }

  /** How many bytes a ring of `capacity` (a power of two) takes. */
  static size(capacity: number): number {
    return CELLS * 4 + capacity;
  }

  /**
   * A new, empty ring whose ends each have one open handle: in a buffer of
   * its own, or laid over `memory`, zeroed shared bytes of `Ring.size(capacity)`
   * (a block of `SharedMemory`, which any process can find by name).
   */
  static create(capacity: number = DEFAULT_CAPACITY, memory?: Uint8Array): Ring {
    const ring = memory
      ? new Ring(memory.buffer as SharedArrayBuffer, memory.byteOffset, Ring.size(capacity))
      : new Ring(new SharedArrayBuffer(Ring.size(capacity)));
    ring.ends.open();
    return ring;
  }

  /** Complete messages waiting (never negative). */
  items(): number {
    return Math.max(0, this.#count());
  }

  /** Messages in the ring, as the two counts say: below zero for a moment while a writer counts its message. */
  #count(): number {
    return (Atomics.load(this.cells, SENT) - Atomics.load(this.cells, TAKEN)) | 0;
  }

  /** Whether any byte is waiting to be read. */
  hasData(): boolean {
    return Atomics.load(this.cells, BYTES_READ) !== Atomics.load(this.cells, BYTES_WRITTEN);
  }

  /**
   * Sends a message that fits in the ring if the write lock is free and
   * there is room (and fewer than `limit` items): the common case, done
   * without the machinery of {@linkcode send}.
   */
  trySend(message: Uint8Array, limit: number): boolean {
    if (4 + message.length > this.capacity) return false;
    if (tryHold(this.cells, WRITE_LOCK, holderPid()) !== 0) return false;
    const sent = this.#sendLocked(message, limit);
    this.#unlock(WRITE_LOCK);
    return sent;
  }

  /** Holding the write lock: writes a message that fits if there is room; else notes the head to wait on. */
  #sendLocked(message: Uint8Array, limit: number): boolean {
    const cells = this.cells;
    const tail = Atomics.load(cells, BYTES_WRITTEN);
    const need = 4 + pad(message.length);
    // The head this process read before is good enough while no other process has written since: then the tail
    // is still where this process left it, the head has moved at most that far, and the room it shows is at most
    // the room there is. Reading the head anew for every message would move the readers' line here each time.
    if (
      limit !== 0 || !this.#headKnown || tail !== this.#lastTail ||
      need > this.capacity - ((tail - this.#seenHead) >>> 0)
    ) {
      const head = (this.#seenHead = Atomics.load(cells, BYTES_READ));
      this.#headKnown = true;
      if (limit !== 0 && this.#count() >= limit) return false;
      if (need > this.capacity - ((tail - head) >>> 0)) return false;
    }
    beginCommit();
    this.#writeChunk(message, 0, message.length, 0);
    Atomics.add(cells, SENT, 1);
    endCommit();
    this.#lastTail = (tail + need) | 0;
    return true;
  }

  /** The head as this process last read it, and the tail after its last message (see `#sendLocked`). */
  #seenHead = 0;
  #headKnown = false;
  #lastTail = 0;

  /** The plan of sending one message; waits while `items() >= limit` (0: no limit) before it starts. */
  *send(message: Uint8Array, limit: number): Plan<void> {
    const cells = this.cells;
    for (;;) {
      yield* this.#lock(WRITE_LOCK);
      if (4 + message.length > this.capacity) {
        this.#seenHead = Atomics.load(cells, BYTES_READ);
        if (limit === 0 || this.#count() < limit) return yield* this.#stream(message);
      } else if (this.#sendLocked(message, limit)) {
        this.#unlock(WRITE_LOCK);
        return;
      }
      const head = this.#seenHead;
      this.#unlock(WRITE_LOCK);
      yield this.#until(BYTES_READ, head, SPACE_SLEEPERS);
    }
  }

  /** Writes a message bigger than the ring, chunk by chunk, as readers make room. */
  *#stream(message: Uint8Array): Plan<void> {
    const cells = this.cells;
    beginCommit();
    Atomics.store(cells, MESSAGE_START, Atomics.load(cells, BYTES_WRITTEN));
    Atomics.store(cells, WRITING, 1);
    endCommit();
    let offset = 0;
    while (offset < message.length) {
      const head = Atomics.load(cells, BYTES_READ);
      const free = this.capacity - ((Atomics.load(cells, BYTES_WRITTEN) - head) >>> 0);
      if (free < 8) {
        yield this.#firmly(BYTES_READ, head, SPACE_SLEEPERS);
        continue;
      }
      const size = Math.min(message.length - offset, (free - 4) & ~3);
      const last = offset + size === message.length;
      // The last chunk, the count and the end of WRITING in one commit: a message is complete or not sent.
      beginCommit();
      this.#writeChunk(message, offset, size, last ? 0 : MORE);
      offset += size;
      if (last) {
        Atomics.add(cells, SENT, 1);
        Atomics.store(cells, WRITING, 0);
      }
      endCommit();
    }
    this.#unlock(WRITE_LOCK);
  }

  /** Copies a chunk in after `tail` and publishes it with one store. */
  #writeChunk(message: Uint8Array, offset: number, size: number, flags: number): void {
    const tail = Atomics.load(this.cells, BYTES_WRITTEN);
    const at = tail & this.#mask;
    this.#words[at >> 2] = (size << 2) | flags;
    const start = (at + 4) & this.#mask;
    const first = Math.min(size, this.capacity - start);
    const bytes = this.bytes;
    if (first === size && size <= COPY_BY_LOOP) {
      for (let i = 0; i < size; i++) bytes[start + i] = message[offset + i];
    } else {
      bytes.set(message.subarray(offset, offset + first), start);
      if (first < size) bytes.set(message.subarray(offset + first, offset + size), 0);
    }
    Atomics.store(this.cells, BYTES_WRITTEN, (tail + 4 + pad(size)) | 0);
    if (Atomics.load(this.cells, DATA_SLEEPERS) > 0) Atomics.notify(this.cells, BYTES_WRITTEN);
  }

  /**
   * Receives the next message if it is a single chunk and the read lock is
   * free: the common case, done without the machinery of {@linkcode receive}.
   */
  tryReceive(): Uint8Array | undefined {
    const cells = this.cells;
    if (!this.hasData()) return undefined;
    if (tryHold(cells, READ_LOCK, holderPid()) !== 0) return undefined;
    // Read under the lock: another reader may have taken the message seen before.
    const head = Atomics.load(cells, BYTES_READ);
    let message: Uint8Array | undefined;
    const at = head & this.#mask;
    const header = this.#words[at >> 2];
    // A streamed message, or one a dead reader began: left to receive().
    if (
      head !== Atomics.load(cells, BYTES_WRITTEN) && (header & (MORE | ABORT)) === 0 &&
      Atomics.load(cells, READING) === 0
    ) {
      message = this.#readChunk(at, header >>> 2);
      beginCommit();
      Atomics.add(cells, TAKEN, 1);
      this.#advance((head + 4 + pad(header >>> 2)) | 0);
      endCommit();
    }
    this.#unlock(READ_LOCK);
    return message;
  }

  /**
   * The next message without waiting for one to begin, or `undefined`: one
   * that has begun is finished, a streamed one as its sender writes it (on
   * the main thread by polling, see {@linkcode runSync}).
   */
  receiveIfReady(what: string): Uint8Array | undefined {
    if (!this.hasData()) return undefined;
    const bytes = this.tryReceive() ?? this.runSync(this.receive(undefined, true), 0, what);
    return bytes === TIMED_OUT ? undefined : bytes;
  }

  /**
   * The plan of receiving one message. When the ring is empty, `idle`
   * decides: return a value instead of waiting (end of file), or `undefined`
   * to wait for data (without `idle`, always: a queue has no end of file).
   * With `finish`, a streamed message this receive has begun is finished
   * even if the run's time is up (for a receive that may not wait at all).
   */
  receive(): Plan<Uint8Array>;
  receive<E>(idle: (() => E | undefined) | undefined, finish?: boolean): Plan<Uint8Array | E>;
  *receive<E>(idle?: () => E | undefined, finish = false): Plan<Uint8Array | E> {
    const cells = this.cells;
    for (;;) {
      // A message this process began, and left when its wait ran out, still holding the read lock: go on with it.
      const paused = this.#paused;
      this.#paused = undefined;
      const skipping = paused ? paused.dropping : yield* this.#lock(READ_LOCK);
      const parts: Uint8Array[] = paused?.parts ?? [];
      let dropping = skipping;
      for (;;) {
        const head = Atomics.load(cells, BYTES_READ);
        const tail = Atomics.load(cells, BYTES_WRITTEN);
        if (head === tail) {
          if (Atomics.load(cells, READING) === 0) break;
          let waiting = true;
          try {
            yield* this.#awaitChunk(tail, finish);
            waiting = false;
          } finally {
            if (waiting) this.#paused = { parts, dropping };
          }
          continue;
        }
        const at = head & this.#mask;
        const header = this.#words[at >> 2];
        const size = header >>> 2;
        const next = (head + 4 + pad(size)) | 0;
        if (header & ABORT) {
          parts.length = 0;
          dropping = false;
          beginCommit();
          Atomics.store(cells, READING, 0);
          this.#advance(next);
          endCommit();
          continue;
        }
        if (!dropping) parts.push(this.#readChunk(at, size));
        if (header & MORE) {
          beginCommit();
          Atomics.store(cells, READING, 1);
          this.#advance(next);
          endCommit();
          continue;
        }
        // Counted out before the head moves: dying in between leaves the count low, never high (a full queue forever).
        beginCommit();
        Atomics.add(cells, TAKEN, 1);
        Atomics.store(cells, READING, 0);
        this.#advance(next);
        endCommit();
        if (dropping) {
          dropping = false;
          parts.length = 0;
          continue;
        }
        this.#unlock(READ_LOCK);
        return parts.length === 1 ? parts[0] : concat(parts);
      }
      const tail = Atomics.load(cells, BYTES_WRITTEN);
      // An empty ring should count no items; a count left low by a dead process heals here. Not while a live
      // writer holds the write lock: it may have published a message that was taken already and not yet counted
      // it (healing then left the count one high for good, a bounded queue one place short). Only readers,
      // holding the read lock, change TAKEN: a plain store, which a writer's count may follow.
      const writer = Atomics.load(cells, WRITE_LOCK);
      const sent = Atomics.load(cells, SENT);
      if (((sent - Atomics.load(cells, TAKEN)) | 0) < 0 && (writer === 0 || holderEnded(writer))) {
        Atomics.store(cells, TAKEN, sent);
      }
      this.#unlock(READ_LOCK);
      const result = idle?.();
      // Data sent just before the other end closed is still read before the end of file.
      if (result !== undefined && !this.hasData()) return result;
      if (result !== undefined) continue;
      yield holderWait(this.cells, BYTES_WRITTEN, tail, Infinity, DATA_SLEEPERS);
    }
  }

  /** The plan of waiting until a message can be read, or the sending end has closed. */
  *ready(): Plan<true> {
    for (;;) {
      const tail = Atomics.load(this.cells, BYTES_WRITTEN);
      if (tail !== Atomics.load(this.cells, BYTES_READ)) return true;
      this.ends.reap("senders");
      if (this.ends.senders() === 0) return true;
      yield holderWait(this.cells, BYTES_WRITTEN, tail, Infinity, DATA_SLEEPERS);
    }
  }

  /**
   * Waits, holding the read lock, for the next chunk of a streamed message;
   * ends a message whose writer died. Not firm: a timed receive whose time
   * runs out here keeps the read lock and what it has read (`#paused`), and
   * the next receive of this process goes on from there; so no wait outlives
   * its timeout, whatever a writer does, and no message is lost for it.
   */
  *#awaitChunk(tail: number, finish: boolean): Plan<void> {
    const cells = this.cells;
    const writer = Atomics.load(cells, WRITE_LOCK);
    // Take the write lock over, which writes the ABORT chunk that ends the message; never wait for it: a writer
    // that took it over first writes the ABORT itself, then perhaps a big message of its own, which waits for us.
    if (takeOver(cells, WRITE_LOCK, writer, holderPid())) {
      yield* this.#recover(WRITE_LOCK);
      this.#unlock(WRITE_LOCK);
      return;
    }
    // Sliced, so that a writer that ends is noticed; cut short by the run's end (the next receive goes on with
    // the message) unless this receive must finish what it began.
    const chunk = holderWait(cells, BYTES_WRITTEN, tail, Infinity, DATA_SLEEPERS);
    if (finish) chunk.abortable = false;
    yield chunk;
  }

  /** A streamed message this process is in the middle of, with the read lock, after a receive timed out. */
  #paused?: { parts: Uint8Array[]; dropping: boolean };

  #readChunk(at: number, size: number): Uint8Array {
    const start = (at + 4) & this.#mask;
    const first = Math.min(size, this.capacity - start);
    if (first === size) return this.bytes.slice(start, start + size);
    const copy = new Uint8Array(size);
    copy.set(this.bytes.subarray(start, start + first));
    copy.set(this.bytes.subarray(0, size - first), first);
    return copy;
  }

  #advance(head: number): void {
    Atomics.store(this.cells, BYTES_READ, head);
    if (Atomics.load(this.cells, SPACE_SLEEPERS) > 0) Atomics.notify(this.cells, BYTES_READ);
  }

  /**
   * Takes a lock, taking it over from a holder that has ended. Returns
   * whether the read lock was taken over from a reader in the middle of a
   * streamed message (whose remaining chunks must then be skipped).
   */
  *#lock(lock: number): Plan<boolean> {
    const cells = this.cells;
    const me = holderPid();
    for (;;) {
      const holder = tryHold(cells, lock, me);
      if (holder === 0) return false;
      // At once: an ended holder is fenced off (fence.ts), it can write nothing more, even if its thread still runs.
      if (takeOver(cells, lock, holder, me)) return yield* this.#recover(lock);
      yield holderWait(cells, lock, holder, Infinity, LOCK_SLEEPERS);
    }
  }

  /** Repairs what a lock's dead holder left half done. */
  *#recover(lock: number): Plan<boolean> {
    const cells = this.cells;
    if (lock === READ_LOCK) return Atomics.load(cells, READING) === 1;
    if (Atomics.load(cells, WRITING) === 0) return false;
    // No reader has begun the dead writer's message: take it back, so it does not fill the ring until one comes.
    if (tryHold(cells, READ_LOCK, holderPid()) === 0) {
      const unread = Atomics.load(cells, READING) === 0;
      if (unread) {
        beginCommit();
        Atomics.store(cells, BYTES_WRITTEN, Atomics.load(cells, MESSAGE_START));
        Atomics.store(cells, WRITING, 0);
        endCommit();
      }
      this.#unlock(READ_LOCK);
      if (unread) return false;
    }
    for (;;) {
      const head = Atomics.load(cells, BYTES_READ);
      if (this.capacity - ((Atomics.load(cells, BYTES_WRITTEN) - head) >>> 0) >= 4) break;
      yield this.#firmly(BYTES_READ, head, SPACE_SLEEPERS);
    }
    beginCommit();
    this.#writeChunk(new Uint8Array(0), 0, 0, ABORT);
    Atomics.store(cells, WRITING, 0);
    endCommit();
    return false;
  }

  #unlock(lock: number): void {
    letGo(this.cells, lock, holderPid());
    if (Atomics.load(this.cells, LOCK_SLEEPERS) > 0) Atomics.notify(this.cells, lock, 1);
  }

  /** A wait until `cells[index]` moves away from `value`; ended by the run's timeout or abort. */
  #until(index: number, value: number, sleepers: number): CellWaitRequest {
    return { cell: this.cells, index, value, timeout: Infinity, sleepers };
  }

  /** A wait in the middle of a message, holding a lock: neither a timeout nor an abort may end it. */
  #firmly(index: number, value: number, sleepers: number): CellWaitRequest {
    return { cell: this.cells, index, value, timeout: Infinity, sleepers, abortable: false };
  }

  /** Runs `plan` (an operation of this ring) without blocking the thread; `TIMED_OUT` when the wait runs out. */
  run<T>(plan: Plan<T>, wait: Wait): Promise<T | typeof TIMED_OUT> {
    try {
      wait.signal?.throwIfAborted();
    } catch (error) {
      return Promise.reject(error);
    }
    return awaitPlanUntil(plan, deadline(wait.timeout), wait.signal);
  }

  /**
   * Runs `plan`, blocking this worker thread while it waits; `TIMED_OUT`
   * when `timeout` runs out. With `timeout` 0 it never blocks, except to
   * finish a streamed message it has begun (then, on the main thread, by
   * polling).
   */
  runSync<T>(plan: Plan<T>, timeout: number, what: string): T | typeof TIMED_OUT {
    return blockOnPlanUntil(plan, deadline(timeout), what, adapter.parent() === null);
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const whole = new Uint8Array(length);
  let at = 0;
  for (const part of parts) (whole.set(part, at), at += part.length);
  return whole;
}
