/**
 * The byte protocol of CPython's `multiprocessing.connection` on a socket:
 * each message is a 4-byte big-endian signed length and then that many
 * bytes; a message longer than 2^31 - 1 bytes has the length -1 and then an
 * 8-byte big-endian length. {@linkcode frame} writes that header,
 * {@linkcode FrameReader} takes a byte stream apart into messages.
 *
 * The reader refuses a header that announces more than its limit before it
 * keeps a single byte of the body, so a peer cannot make it hold more than
 * the limit in memory.
 *
 * @module
 */

/** The longest message whose length fits the short header; longer ones use the -1 + 8-byte form. */
const SHORT_MAX = 0x7fffffff;

/** Python concatenates header and body up to this size (against Nagle's delays); beyond it, writes them apart. */
export const CONCAT_MAX = 16384;

/** The header of a message of `length` bytes. */
export function header(length: number): Uint8Array {
  if (length <= SHORT_MAX) {
    const h = new Uint8Array(4);
    new DataView(h.buffer).setInt32(0, length, false);
    return h;
  }
  const h = new Uint8Array(12);
  const view = new DataView(h.buffer);
  view.setInt32(0, -1, false);
  view.setBigUint64(4, BigInt(length), false);
  return h;
}

/** A message with its header, as one buffer (for messages up to {@linkcode CONCAT_MAX}). */
export function frame(body: Uint8Array): Uint8Array {
  const n = body.length;
  if (n > SHORT_MAX) throw new RangeError(`frame: ${n} bytes need the long header; write header() and the body`);
  const out = new Uint8Array(4 + n);
  out[0] = n >>> 24;
  out[1] = (n >>> 16) & 0xff;
  out[2] = (n >>> 8) & 0xff;
  out[3] = n & 0xff;
  out.set(body, 4);
  return out;
}

/** Why the stream broke: the reader takes no more bytes after one of these. */
export class FrameError extends Error {}
Object.defineProperty(FrameError.prototype, "name", { value: "FrameError", writable: true, configurable: true });

/**
 * Cuts a byte stream into messages. Feed it what the socket reads; it calls
 * `onMessage` for each whole message and throws a {@linkcode FrameError}
 * when a header is invalid or announces more than `limit` bytes.
 */
export class FrameReader {
  readonly #limit: number;
  readonly #onMessage: (body: Uint8Array) => void;
  /** Chunks not yet consumed, and how many bytes they hold. */
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  /** The body length of the message being read, once its header is complete; -1 before. */
  #want = -1;

  constructor(limit: number, onMessage: (body: Uint8Array) => void) {
    this.#limit = limit;
    this.#onMessage = onMessage;
  }

  /** Bytes of an unfinished message held now (0 between messages). */
  get pending(): number {
    return this.#buffered;
  }

  /** The length of the message being read, or -1 while its header is incomplete. */
  get expected(): number {
    return this.#want;
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    // A plain view of the runtime's Buffer: Buffer.subarray costs ~100 us on Deno's node:buffer (measured: 20k
    // small messages took 2.6 s to take apart), a Uint8Array's nothing.
    let bytes = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (this.#buffered === 0 && this.#want < 0) {
      // Nothing held: whole messages are taken straight out of the chunk, one view each (the usual case:
      // a read holds whole messages), and only a rest is kept.
      const at = this.#whole(bytes);
      if (at === bytes.length) return;
      bytes = bytes.subarray(at);
    }
    this.#chunks.push(bytes);
    this.#buffered += bytes.length;
    for (;;) {
      if (this.#want < 0 && !this.#readHeader()) return;
      if (this.#buffered < this.#want) return;
      const body = this.#take(this.#want);
      this.#want = -1;
      this.#onMessage(body);
    }
  }

  /** Hands over the whole messages with short headers at the start of `bytes`; where the rest starts. */
  #whole(bytes: Uint8Array): number {
    let at = 0;
    const end = bytes.length;
    while (end - at >= 4) {
      const n = (bytes[at] << 24) | (bytes[at + 1] << 16) | (bytes[at + 2] << 8) | bytes[at + 3];
      // A negative or too long length, or a message not all here: the general path decides.
      if (n < 0 || n > this.#limit || end - at - 4 < n) break;
      this.#onMessage(bytes.subarray(at + 4, at + 4 + n));
      at += 4 + n;
    }
    return at;
  }

  /** Reads a header when its bytes are there; says whether it did. */
  #readHeader(): boolean {
    if (this.#buffered < 4) return false;
    const first = this.#peek(12);
    const view = new DataView(first.buffer, first.byteOffset, first.byteLength);
    let length = view.getInt32(0, false);
    let size = 4;
    if (length === -1) {
      if (this.#buffered < 12) return false;
      const long = view.getBigUint64(4, false);
      length = long > BigInt(Number.MAX_SAFE_INTEGER) ? Infinity : Number(long);
      size = 12;
    } else if (length < 0) {
      throw new FrameError(
        `bad message length: the header says ${length} bytes (garbage, or not a multiprocessing peer)`,
      );
    }
    if (length > this.#limit) {
      throw new FrameError(
        `a message of ${length} bytes is longer than the limit of ${this.#limit} bytes (maxMessageBytes)`,
      );
    }
    this.#take(size);
    this.#want = length;
    return true;
  }

  /** Up to `n` bytes from the front, without consuming them. */
  #peek(n: number): Uint8Array {
    const head = this.#chunks[0];
    if (head.length >= n || this.#chunks.length === 1) return head.subarray(0, n);
    return this.#gather(Math.min(n, this.#buffered), false);
  }

  /** Exactly `n` bytes from the front (n <= buffered), consumed: a view when one chunk holds them, else a copy. */
  #take(n: number): Uint8Array {
    const head = this.#chunks[0];
    if (n === 0) return new Uint8Array(0);
    if (head.length >= n) {
      this.#buffered -= n;
      if (head.length === n) this.#chunks.shift();
      else this.#chunks[0] = head.subarray(n);
      return head.subarray(0, n);
    }
    return this.#gather(n, true);
  }

  #gather(n: number, consume: boolean): Uint8Array {
    const out = new Uint8Array(n);
    let filled = 0;
    let i = 0;
    while (filled < n) {
      const chunk = this.#chunks[i];
      const part = Math.min(chunk.length, n - filled);
      out.set(chunk.subarray(0, part), filled);
      filled += part;
      if (consume && part < chunk.length) this.#chunks[i] = chunk.subarray(part);
      else i++;
    }
    if (consume) {
      this.#chunks.splice(0, i);
      this.#buffered -= n;
    }
    return out;
  }
}
