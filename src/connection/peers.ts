/**
 * How two programs of this library on the ends of a socket tell each other
 * apart from a Python peer, so that `send`/`recv` between them carry what a
 * `Pipe` carries (src/pickle.ts, the library's own encoding) while a Python
 * peer only ever gets Python's pickle. Declared once for both ends.
 *
 * Each of ours signs what a Python peer reads past without looking:
 * - with an authkey, the challenge it delivers: `{sha256}`, the
 *   {@linkcode SIGNATURE}, then the random bytes (Python HMACs the whole
 *   challenge and never reads into it), so both ends know before the first message;
 * - without one, every pickle it `send`s, after the pickle's STOP opcode
 *   (Python's `pickle.loads` ignores bytes past the pickle, as its docs say),
 *   so each end knows once a message from the other arrived.
 *
 * A message in our own encoding starts with {@linkcode OURS}, which starts
 * no pickle (protocol 2+ pickles start with PROTO, 0x80; older ones with an
 * opcode below 0x80), and is sent only to a peer that signed. The
 * signature carries the encoding's version and the host's byte order
 * (src/pickle.ts writes floats and typed arrays in it): a peer with another
 * of either gets Python's pickle.
 *
 * @module
 */

/** Bump when src/pickle.ts's bytes change: two programs with different versions then talk pickle. */
const VERSION = 1;

/** 1 on a little-endian host, 2 on a big-endian one. */
const BYTE_ORDER = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 1 : 2;

/** `\0mp-ts`, the version, the byte order: 8 bytes that a Python peer never writes where we look for them. */
export const SIGNATURE: Uint8Array = Uint8Array.from([0x00, 0x6d, 0x70, 0x2d, 0x74, 0x73, VERSION, BYTE_ORDER]);

/** The first byte of a message in our own encoding. */
export const OURS = 0xfe;

/** Whether `bytes` holds our signature (this version, this byte order) at `at`. */
export function signedAt(bytes: Uint8Array, at: number): boolean {
  if (at < 0 || at + SIGNATURE.length > bytes.length) return false;
  for (let i = 0; i < SIGNATURE.length; i++) if (bytes[at + i] !== SIGNATURE[i]) return false;
  return true;
}

/** Whether a message that arrived shows its sender is one of ours: our encoding, or a signed pickle. */
export function signedMessage(body: Uint8Array): boolean {
  return body[0] === OURS || signedAt(body, body.length - SIGNATURE.length);
}
