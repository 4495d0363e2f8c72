/**
 * The byte buffer the pickler (`dump.ts`) writes into: growth, the 4- and
 * 8-byte little-endian lengths, CPython's framing (protocol 4+) and the memo
 * that makes shared references come back shared. `dump.ts` decides what to
 * write; this module only knows how bytes are laid down.
 *
 * @module
 */
import { Op } from "./opcodes.ts";
import type { PyTuple } from "./values.ts";

/** Bytes in a FRAME, as CPython's framer targets. */
const FRAME_TARGET = 64 * 1024;

/**
 * The pickler's output: a growing buffer, the open FRAME and the memo.
 *
 * @example
 * ```ts
 * import { Writer } from "./writer.ts";
 * const w = new Writer(4);
 * w.byte(0x80);
 * ```
 */
export class Writer {
  out = new Uint8Array(256);
  at = 0;
  /** Where the open FRAME's 8-byte length goes, or -1 (protocol < 4). */
  frameStart = -1;
  memo = new Map<unknown, number>();
  /** Tuples being written: a tuple that contains itself cannot be pickled by value. */
  readonly open = new Set<PyTuple>();
  readonly view = new DataView(this.out.buffer);

  protocol: number;
  /** See `DumpOptions.exact`. */
  exact = false;
  /**
   * Whether each value's path is built as the writer descends, for an error
   * message. Off for the first attempt: the template strings per element
   * were a large part of dumps for small messages (callgrind, a manager
   * request); a value that fails is written again with them on.
   */
  paths = false;

  constructor(protocol: number) {
    this.protocol = protocol;
  }

  reset(protocol: number, exact: boolean): void {
    this.protocol = protocol;
    this.exact = exact;
    this.at = 0;
    this.frameStart = -1;
    // A new Map, not clear(): measured, clear() on every small message cost more than the rest of dumps.
    if (this.memo.size > 0) this.memo = new Map();
    if (this.open.size > 0) this.open.clear();
  }

  room(n: number): void {
    if (this.at + n <= this.out.length) return;
    let size = this.out.length * 2;
    while (size < this.at + n) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.out.subarray(0, this.at));
    this.out = grown;
    (this as { view: DataView }).view = new DataView(grown.buffer);
  }

  byte(b: number): void {
    this.room(1);
    this.out[this.at++] = b;
  }

  bytes(b: Uint8Array): void {
    this.room(b.length);
    this.out.set(b, this.at);
    this.at += b.length;
  }

  u32(op: number, n: number): void {
    this.room(5);
    this.out[this.at] = op;
    this.view.setUint32(this.at + 1, n, true);
    this.at += 5;
  }

  u64(op: number, n: number): void {
    this.room(9);
    this.out[this.at] = op;
    this.view.setBigUint64(this.at + 1, BigInt(n), true);
    this.at += 9;
  }

  /**
   * An opcode with a length after it: `short` with one byte under 256 (-1
   * when that form is not allowed), else `long` with 4 bytes, else `huge`
   * with 8, as CPython writes str and bytes.
   */
  sizedOp(n: number, short: number, long: number, huge: number): void {
    if (n < 256 && short >= 0) {
      this.room(2);
      this.out[this.at++] = short;
      this.out[this.at++] = n;
    } else if (n <= 0xffffffff) this.u32(long, n);
    else this.u64(huge, n);
  }

  /** Opens a FRAME (protocol 4+): its length is filled in by `endFrame`. */
  startFrame(): void {
    if (this.protocol < 4) return;
    this.frameStart = this.at;
    this.u64(Op.FRAME, 0);
  }

  /** Closes the open frame and, when it is full enough, opens the next one, as CPython's framer does. */
  endFrame(more: boolean): void {
    if (this.frameStart < 0) return;
    const length = this.at - this.frameStart - 9;
    if (length < 4 && !more) {
      // CPython writes no FRAME for tiny payloads; drop the header.
      this.out.copyWithin(this.frameStart, this.frameStart + 9, this.at);
      this.at -= 9;
    } else {
      this.view.setUint32(this.frameStart + 1, length % 2 ** 32, true);
      this.view.setUint32(this.frameStart + 5, Math.floor(length / 2 ** 32), true);
    }
    this.frameStart = -1;
    if (more) this.startFrame();
  }

  /** After an opcode: a full frame is closed and a new one opened. */
  maybeFrame(): void {
    if (this.frameStart >= 0 && this.at - this.frameStart - 9 >= FRAME_TARGET) this.endFrame(true);
  }

  remember(key: unknown): void {
    const index = this.memo.size;
    this.memo.set(key, index);
    if (this.protocol >= 4) this.byte(Op.MEMOIZE);
    else if (index < 256) {
      this.room(2);
      this.out[this.at++] = Op.BINPUT;
      this.out[this.at++] = index;
    } else this.u32(Op.LONG_BINPUT, index);
  }

  /** Writes a memo reference when `key` was written before; says whether it did. */
  recall(key: unknown): boolean {
    const index = this.memo.get(key);
    if (index === undefined) return false;
    if (index < 256) {
      this.room(2);
      this.out[this.at++] = Op.BINGET;
      this.out[this.at++] = index;
    } else this.u32(Op.LONG_BINGET, index);
    return true;
  }
}
