/**
 * UTF-8 as pickle uses it: Python encodes `str` with the "surrogatepass"
 * error handler, so a lone surrogate (legal in both Python and JavaScript
 * strings) travels as its 3-byte form instead of turning into U+FFFD.
 * `TextEncoder`/`TextDecoder` handle every well-formed string; the slow
 * paths here run only for the rest.
 *
 * @module
 */

const encoder = new TextEncoder();
const strict = new TextDecoder("utf-8", { fatal: true });

/** `text` as UTF-8, lone surrogates as their 3-byte form. */
export function encodeText(text: string): Uint8Array {
  if (text.isWellFormed()) return encoder.encode(text);
  const out: number[] = [];
  for (let i = 0; i < text.length; i++) {
    let c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const low = text.charCodeAt(i + 1);
      if (low >= 0xdc00 && low <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (low - 0xdc00);
        i++;
      }
    }
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
  }
  return new Uint8Array(out);
}

/**
 * UTF-8 `bytes` as a string, accepting encoded lone surrogates.
 *
 * @throws {Error} naming the offset of the first byte that is not UTF-8.
 */
export function decodeText(bytes: Uint8Array): string {
  try {
    return strict.decode(bytes);
  } catch {
    return decodeSurrogatePass(bytes);
  }
}

function decodeSurrogatePass(bytes: Uint8Array): string {
  let text = "";
  let i = 0;
  const bad = () => new Error(`invalid UTF-8 at byte ${i}`);
  const next = (k: number) => {
    const b = bytes[i + k];
    if (b === undefined || (b & 0xc0) !== 0x80) throw bad();
    return b & 63;
  };
  while (i < bytes.length) {
    const b = bytes[i];
    let c: number;
    let n: number;
    if (b < 0x80) [c, n] = [b, 1];
    else if (b >= 0xc2 && b < 0xe0) [c, n] = [((b & 31) << 6) | next(1), 2];
    else if (b >= 0xe0 && b < 0xf0) {
      c = ((b & 15) << 12) | (next(1) << 6) | next(2);
      if (c < 0x800) throw bad();
      n = 3;
    } else if (b >= 0xf0 && b < 0xf5) {
      c = ((b & 7) << 18) | (next(1) << 12) | (next(2) << 6) | next(3);
      if (c < 0x10000 || c > 0x10ffff) throw bad();
      n = 4;
    } else throw bad();
    text += String.fromCodePoint(c);
    i += n;
  }
  return text;
}
