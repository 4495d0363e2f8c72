/**
 * The sending side of a socket `Connection` (`socket.ts`): framed messages
 * queued in one turn of the event loop go out in one write at its end.
 * Measured on Node: one `socket.write` per small message gave 34k msgs/s
 * one way, a third of what one write per turn gives.
 *
 * Small messages are copied, header and body, into one scratch buffer as
 * they are queued, and the scratch is what the turn writes: no buffer per
 * message (a fresh buffer per pickle was a tenth of the sender's CPU on
 * Deno, its largest single cost after the pickling itself). The scratch is
 * the socket's until that write's callback; a turn that comes sooner takes
 * a new one. The body of a large message is written as it is, in its place
 * between the small ones.
 *
 * @module
 */
import type { Socket } from "node:net";
import { CONCAT_MAX, header } from "./frames.ts";

/** The scratch's first size; it doubles as a turn needs. */
const SCRATCH_BYTES = 16 * 1024;
/** A scratch grown past this (a burst of sends) is not kept for the next turn. */
const SCRATCH_KEPT_BYTES = 1024 * 1024;

/** One turn's write on its way: its sends' Promise, settled once (by the socket's callback or by abandon()). */
type Write = { batch: PromiseWithResolvers<void>; settled: boolean };

/**
 * A socket's queue of framed bytes, with the Promise the sends of one turn share.
 *
 * @example
 * ```ts
 * import { Socket } from "node:net";
 * import { Outbox } from "./outbox.ts";
 * const outbox = new Outbox(new Socket(), "127.0.0.1:6000", () => {}, () => {});
 * ```
 */
export class Outbox {
  readonly #socket: Socket;
  readonly #peer: string;
  /** Called when a write is pending and when it is done: the connection keeps the program alive meanwhile. */
  readonly #hold: () => void;
  readonly #release: () => void;
  /** This turn's small messages, end to end, in `#scratch[0, #used)`. */
  #scratch = new Uint8Array(SCRATCH_BYTES);
  #used = 0;
  /** The scratch was handed to a write that has not called back: the next turn fills a new one. */
  #lent = false;
  /** What goes before the scratch's bytes in this turn's write: runs of small messages and large bodies, in order. */
  #before: Uint8Array[] = [];
  /** The Promise this turn's sends share. */
  #batch?: PromiseWithResolvers<void>;
  readonly #flushNow = () => this.flush();
  /** Writes handed to the socket whose callback has not come: what {@linkcode abandon} fails. */
  #inFlight = new Set<Write>();
  #written = 0;

  /** An outbox writing to `socket`, naming `peer` in errors. */
  constructor(socket: Socket, peer: string, hold: () => void, release: () => void) {
    this.#socket = socket;
    this.#peer = peer;
    this.#hold = hold;
    this.#release = release;
  }

  /**
   * Queues bytes that are a whole frame, header included; they are copied
   * at once, so they may be a view the caller reuses. They go out in one
   * write at the end of this turn of the event loop.
   */
  framed(bytes: Uint8Array): Promise<void> {
    const batch = this.#open();
    this.#copy(bytes, this.#room(bytes.length));
    return batch.promise;
  }

  /**
   * Queues `body` as one message (its header is written here). A small body
   * is copied; a large one is written as it is: `owned` says the caller
   * gives it up, else it is copied too (the caller may reuse its buffer).
   */
  message(body: Uint8Array, owned: boolean): Promise<void> {
    const batch = this.#open();
    const n = body.length;
    if (n <= CONCAT_MAX) {
      const at = this.#room(4 + n);
      const scratch = this.#scratch;
      scratch[at] = n >>> 24;
      scratch[at + 1] = (n >>> 16) & 0xff;
      scratch[at + 2] = (n >>> 8) & 0xff;
      scratch[at + 3] = n & 0xff;
      this.#copy(body, at + 4);
      return batch.promise;
    }
    const head = header(n);
    this.#copy(head, this.#room(head.length));
    this.#seal();
    this.#before.push(owned ? body : body.slice());
    return batch.promise;
  }

  /** This turn's batch, opened (and its write planned) by the first send of the turn. */
  #open(): PromiseWithResolvers<void> {
    let batch = this.#batch;
    if (batch) return batch;
    batch = this.#batch = Promise.withResolvers<void>();
    // A send need not be awaited (as a Pipe's): its failure must not end the program as an unhandled
    // rejection. The socket is then broken, so the next call on it throws.
    batch.promise.catch(() => {});
    this.#hold();
    queueMicrotask(this.#flushNow);
    if (this.#lent) {
      this.#scratch = new Uint8Array(SCRATCH_BYTES);
      this.#lent = false;
    }
    return batch;
  }

  /** Where `n` more bytes go in the scratch, grown when they do not fit. */
  #room(n: number): number {
    const at = this.#used;
    if (at + n > this.#scratch.length) {
      let size = this.#scratch.length * 2;
      while (size < at + n) size *= 2;
      const grown = new Uint8Array(size);
      grown.set(this.#scratch.subarray(0, at));
      this.#scratch = grown;
    }
    this.#used = at + n;
    return at;
  }

  /** Copies `bytes` into the scratch at `at`: a loop for a small message, which beats `set` and its view. */
  #copy(bytes: Uint8Array, at: number): void {
    const n = bytes.length;
    if (n > 64) return this.#scratch.set(bytes, at);
    const scratch = this.#scratch;
    for (let i = 0; i < n; i++) scratch[at + i] = bytes[i];
  }

  /** Moves the scratch's bytes so far into a buffer of their own, ahead of what is queued next. */
  #seal(): void {
    if (this.#used === 0) return;
    this.#before.push(this.#scratch.slice(0, this.#used));
    this.#used = 0;
  }

  /** Writes what is queued: the runs and large bodies in order, then the scratch's bytes. */
  flush(): void {
    const batch = this.#batch;
    if (!batch) return;
    this.#batch = undefined;
    const before = this.#before;
    if (before.length > 0) this.#before = [];
    const used = this.#used;
    this.#used = 0;
    if (this.#socket.destroyed || this.#socket.writableEnded) {
      this.#release();
      return batch.reject(
        new Error(`send: the connection to ${this.#peer} is broken (the peer closed it or it failed)`),
      );
    }
    const scratch = this.#scratch;
    const write: Write = { batch, settled: false };
    this.#inFlight.add(write);
    const done = (error?: Error | null) => {
      if (this.#scratch === scratch) this.#lent = false;
      if (write.settled) return;
      this.#settle(write);
      if (error) batch.reject(new Error(`send to ${this.#peer} failed: ${error.message}`, { cause: error }));
      else batch.resolve();
    };
    if (used > 0) {
      // A scratch grown by a burst goes with its write; the next turn starts small again.
      if (scratch.length > SCRATCH_KEPT_BYTES) this.#scratch = new Uint8Array(SCRATCH_BYTES);
      else this.#lent = true;
    }
    for (let i = 0; i < before.length; i++) {
      this.#socket.write(before[i], used === 0 && i === before.length - 1 ? done : undefined);
    }
    if (used > 0) this.#socket.write(scratch.subarray(0, used), done);
  }

  /** Whether a write was handed to the socket and has not called back. */
  get pending(): boolean {
    return this.#inFlight.size > 0;
  }

  /**
   * Fails every write still on its way with `reason`, now: for a socket
   * that is destroyed or closed, so that no send waits on a callback that
   * may never come, and each says why it failed.
   */
  abandon(reason: Error): void {
    for (const write of this.#inFlight) {
      this.#settle(write);
      write.batch.reject(reason);
    }
  }

  /** How many writes called back: how `close()` sees that the peer takes bytes. */
  get written(): number {
    return this.#written;
  }

  #settle(write: Write): void {
    this.#written++;
    write.settled = true;
    this.#inFlight.delete(write);
    this.#release();
  }
}
