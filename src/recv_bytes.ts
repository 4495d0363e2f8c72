/**
 * A Connection's byte messages: Python's `recv_bytes(maxlength)` and
 * `recv_bytes_into(buffer, offset)`, and the range checks of
 * `send_bytes(buffer, offset, size)`, written once for every kind of
 * `Connection` (a `Pipe` end over shared memory, a socket): each passes how
 * it receives its next message, and sends the range itself.
 *
 * @module
 */
import { BufferTooShort } from "./errors.ts";

/**
 * The next message from `receive()`; longer than `maxLength`, it is consumed,
 * the connection closed (`close()`) and an error thrown, as in Python.
 *
 * @example
 * ```ts
 * const bytes = await receiveBytes(() => Promise.resolve(new Uint8Array(3)), () => {}, 8);
 * ```
 */
export function receiveBytes(
  receive: () => Promise<Uint8Array>,
  close: () => void,
  maxLength?: number,
): Promise<Uint8Array> {
  if (maxLength !== undefined && !(Number.isInteger(maxLength) && maxLength >= 0)) {
    throw new RangeError(`recvBytes: maxLength must be an integer >= 0, got ${String(maxLength)}`);
  }
  return receive().then((bytes) => {
    if (maxLength !== undefined && bytes.length > maxLength) {
      close();
      throw new Error(`recvBytes: the message has ${bytes.length} bytes, more than maxLength ${maxLength}`);
    }
    return bytes;
  });
}

/**
 * The next message from `receive()` copied into `buffer` from byte `offset`;
 * resolves its length.
 *
 * @throws {BufferTooShort} when it does not fit; the message is in the error's `bytes`.
 * @example
 * ```ts
 * const n = await receiveBytesInto(() => Promise.resolve(new Uint8Array(3)), new Uint8Array(8), 2);
 * ```
 */
export function receiveBytesInto(
  receive: () => Promise<Uint8Array>,
  buffer: ArrayBufferView | ArrayBuffer,
  offset: number,
): Promise<number> {
  const target = bytesOf(buffer);
  if (!Number.isInteger(offset) || offset < 0 || offset > target.length) {
    throw new RangeError(`recvBytesInto: offset ${offset} is outside the buffer of ${target.length} bytes`);
  }
  return receive().then((bytes) => {
    if (bytes.length > target.length - offset) throw new BufferTooShort(bytes);
    target.set(bytes, offset);
    return bytes.length;
  });
}

/** The bytes of `buffer`, as a view on the same memory. */
function bytesOf(buffer: ArrayBufferView | ArrayBuffer): Uint8Array {
  return ArrayBuffer.isView(buffer)
    ? new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength)
    : new Uint8Array(buffer);
}

/**
 * The `size` bytes of `buffer` from byte `offset` (to its end by default)
 * that `sendBytes(buffer, offset, size)` sends, as a view on the caller's
 * memory: the caller copies it before the call returns, since the buffer
 * may be reused at once (as in Python).
 *
 * @throws {RangeError} when `offset`/`size` fall outside the buffer.
 * @example
 * ```ts
 * const range = sentBytes(new Uint8Array([1, 2, 3, 4]), 1, 2); // Uint8Array [2, 3]
 * ```
 */
export function sentBytes(buffer: ArrayBufferView | ArrayBuffer, offset: number, size?: number): Uint8Array {
  const bytes = bytesOf(buffer);
  const length = size ?? bytes.length - offset;
  if (!Number.isInteger(offset) || offset < 0 || offset > bytes.length) {
    throw new RangeError(`sendBytes: offset ${offset} is outside the buffer of ${bytes.length} bytes`);
  }
  if (!Number.isInteger(length) || length < 0 || offset + length > bytes.length) {
    throw new RangeError(
      `sendBytes: size ${length} from offset ${offset} runs past the buffer of ${bytes.length} bytes`,
    );
  }
  return bytes.subarray(offset, offset + length);
}
