/**
 * The literal forms inside pickles: little-endian integers (LONG1/LONG4),
 * latin-1 text, and protocol 0's text lines (INT, LONG, FLOAT, UNICODE's
 * raw-unicode-escape, STRING's quoted Python 2 repr). Each parser reports
 * bad input through `fail`, which throws.
 *
 * @module
 */

/** Bytes as the characters U+0000-U+00FF. Not `TextDecoder("latin1")`: that is windows-1252, which moves 0x80-0x9F. */
export function latin1(bytes: Uint8Array): string {
  let text = "";
  for (let i = 0; i < bytes.length; i += 8192) text += String.fromCharCode(...bytes.subarray(i, i + 8192));
  return text;
}

export function int(n: bigint): number | bigint {
  return n >= -BigInt(Number.MAX_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
}

/** A little-endian two's complement integer, as LONG1/LONG4 carry it. */
export function decodeLong(bytes: Uint8Array): number | bigint {
  if (bytes.length === 0) return 0;
  let n = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i]);
  if (bytes[bytes.length - 1] & 0x80) n -= 1n << BigInt(bytes.length * 8);
  return int(n);
}

export function parseInt(text: string, fail: (message: string) => never): number | bigint {
  const digits = text.trim().replace(/L$/, "");
  if (!/^[+-]?\d+$/.test(digits)) fail(`not an integer: ${JSON.stringify(text)}`);
  return int(BigInt(digits));
}

export function parseFloat(text: string, fail: (message: string) => never): number {
  const t = text.trim().toLowerCase();
  if (t === "inf" || t === "+inf") return Infinity;
  if (t === "-inf") return -Infinity;
  if (t === "nan" || t === "-nan" || t === "+nan") return NaN;
  const n = Number(t);
  if (t === "" || Number.isNaN(n)) fail(`not a float: ${JSON.stringify(text)}`);
  return n;
}

/** Protocol 0's `raw-unicode-escape`: latin-1 with `\uXXXX` and `\UXXXXXXXX`. */
export function rawUnicodeEscape(text: string, fail: (message: string) => never): string {
  return text.replace(/\\(u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8})/g, (_, hex: string) => {
    const code = Number.parseInt(hex.slice(1), 16);
    if (code > 0x10ffff) fail(`\\U escape beyond U+10FFFF`);
    return String.fromCodePoint(code);
  });
}

/** Protocol 0's STRING: a quoted Python 2 `repr` of a byte string, read as latin-1 text. */
export function quotedString(text: string, fail: (message: string) => never): string {
  const q = text[0];
  if (text.length < 2 || (q !== "'" && q !== '"') || text.at(-1) !== q) fail("STRING is not quoted");
  const body = text.slice(1, -1);
  const simple: Record<string, string> = {
    n: "\n",
    r: "\r",
    t: "\t",
    "\\": "\\",
    "'": "'",
    '"': '"',
    a: "\x07",
    b: "\b",
    f: "\f",
    v: "\v",
    "\n": "",
  };
  return body.replace(/\\(x[0-9a-fA-F]{2}|[0-7]{1,3}|.)/gs, (_, e: string) => {
    if (e[0] === "x") return String.fromCharCode(Number.parseInt(e.slice(1), 16));
    if (/^[0-7]/.test(e)) return String.fromCharCode(Number.parseInt(e, 8) & 0xff);
    return simple[e] ?? `\\${e}`;
  });
}

export function bytesFromLatin1(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i) & 0xff;
  return out;
}
